"""The command line as a user types it: help without torch, each command, and bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import vaekit
from helpers import TINY_ARGS, copy_run, vaekit_cli
from vaekit.cli import main


@pytest.fixture
def trained(trained_once, tmp_path):
    return copy_run(trained_once("cli", *TINY_ARGS), tmp_path / "run")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["evaluate", "--help"],
                                  ["sample", "--help"], ["info", "--help"]])
def test_help_does_not_import_torch(args):
    code = ("import sys, runpy; sys.argv = ['vaekit', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('vaekit', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('OK')")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: vaekit" in result.stdout and result.stdout.rstrip().endswith("OK")


@pytest.mark.slow
def test_train_evaluate_sample_reconstruct_encode_info(tmp_path, blobs_npz, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(blobs_npz), "--out", str(run), *TINY_ARGS]) == 0
    assert capsys.readouterr().out.strip() == str(run)

    # in a fresh interpreter, as typed: stdout holds the JSON and nothing else (no library's chatter)
    result = vaekit_cli("evaluate", run, "--json", "--iw-samples", "10")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)  # one JSON object and nothing else
    assert metrics.keys() >= {"neg_elbo", "recon", "kl", "bits_per_dim", "mse", "psnr", "active_units",
                              "iw_nll"}
    assert metrics["n"] == 24  # the run's own validation split: 10% of 240

    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (5, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    assert main(["generate", str(run), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0

    assert main(["reconstruct", str(run), "--data", str(blobs_npz), "--out", str(tmp_path / "r.npy")]) == 0
    assert np.load(tmp_path / "r.npy").shape == (240, 8, 8)

    assert main(["encode", str(run), "--data", str(blobs_npz), "--out", str(tmp_path / "z.csv")]) == 0
    header, first = (tmp_path / "z.csv").read_text().splitlines()[:2]
    assert header == "z0,z1,z2,z3,label" and len(first.split(",")) == 5

    capsys.readouterr()
    assert main(["info", str(run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["epochs_done"] == 3 and "model.safetensors" in info["files"] and info["kind"] == "run"


def test_resume_from_the_command_line(trained, capsys):
    assert main(["train", "--resume", str(trained), "--epochs", "5", "--quiet", "--no-report"]) == 0
    lines = (trained / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]


def test_ctrl_c_in_training_says_where_the_run_stands_and_how_to_go_on(tmp_path, blobs_npz, capsys, monkeypatch):
    from vaekit.training import Trainer

    real, calls = Trainer.train_epoch, []

    def interrupted_in_epoch_2(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted_in_epoch_2)
    out = tmp_path / "run"
    assert main(["train", "--data", str(blobs_npz), "--out", str(out), *TINY_ARGS]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vaekit train: interrupted; {out} keeps epoch 1: continue with --resume {out}"]
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--quiet", "--no-report"]) == 0
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def one_error_line(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.slow
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "inf.csv").write_text("a,b\n1,inf\n2,3\n")
    # in a fresh interpreter, as typed: the exit status and stderr a shell sees
    line = one_error_line(vaekit_cli("train", "--data", tmp_path / "inf.csv", "--out", tmp_path / "r"))
    assert "infinite values" in line
    assert not (tmp_path / "r").exists()
    for argv, says in ((["train", "--data", "no-such-set"], ("unknown dataset", "mnist-5k")),
                       (["evaluate", str(tmp_path / "nowhere")], ("no such run folder",))):
        assert main(argv) == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err and all(s in lines[0] for s in says), err


def test_existing_run_folder_is_refused_and_kept(trained, blobs_npz, capsys):
    before = {p.name: p.read_bytes() for p in trained.iterdir()}
    assert main(["train", "--data", str(blobs_npz), "--out", str(trained), *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--resume" in err[0]
    assert {p.name: p.read_bytes() for p in trained.iterdir()} == before


@pytest.mark.parametrize("api_call, argv, api, cli", [
    (lambda r, d: vaekit.load(r).sample(4, label=1), ["sample", "{run}", "--label", "1", "--out", "{tmp}/s.npy"],
     "label needs a conditional model; train with model='cvae'", "--label needs a conditional model; train with "
     "--model cvae"),
    (lambda r, d: vaekit.load(r).interpolate(d, 0, 999), ["interpolate", "{run}", "--data", "{data}", "--from", "0",
     "--to", "999", "--out", "{tmp}/p.npy"], "j=999 is out of range", "--to 999 is out of range"),
    (lambda r, d: vaekit.train(d, latent_dim=0), ["train", "--data", "{data}", "--latent-dim", "0"],
     "latent_dim must be at least 1", "argument --latent-dim: must be at least 1, got 0; see vaekit train --help"),
    (lambda r, d: vaekit.train(d, val_fraction=1.5), ["train", "--data", "{data}", "--val-fraction", "1.5"],
     "val_fraction must be in [0, 1)", "argument --val-fraction: must be in [0, 1)"),
    (lambda r, d: vaekit.train(d, out=r), ["train", "--data", "{data}", "--out", "{run}", "--quiet"],
     "choose another out, or continue it with resume=", "choose another --out, or continue it with --resume "),
    # seeds past what the generators take, and noise levels that are no finite number
    (lambda r, d: vaekit.train(d, seed=2 ** 70), ["train", "--data", "{data}", "--seed", str(2 ** 70)],
     "seed must be a whole number from 0 to 2**63 - 1", "--seed must be a whole number from 0 to 2**63 - 1"),
    (lambda r, d: vaekit.load(r).sample(4, seed=-1), ["sample", "{run}", "--seed", "-1", "--out", "{tmp}/s.npy"],
     "got -1", "--seed must be a whole number from 0 to 2**63 - 1 (9223372036854775807), got -1"),
    (lambda r, d: vaekit.load(r).evaluate(seed=2 ** 64), ["evaluate", "{run}", "--seed", str(2 ** 64)],
     "seed must be a whole number", "--seed must be a whole number"),
    (lambda r, d: vaekit.train(d, noise="salt-pepper:nan"), ["train", "--data", "{data}", "--noise",
                                                             "salt-pepper:nan"],
     "noise must look like", "--noise must look like gaussian:0.5"),
    (lambda r, d: vaekit.train(d, noise="gaussian:inf"), ["train", "--data", "{data}", "--noise", "gaussian:inf"],
     "a finite sigma", "--noise must look like gaussian:0.5"),
])
def test_errors_name_the_options_their_reader_typed(trained, blobs_npz, tmp_path, capsys, api_call, argv, api, cli):
    """The Python API names its own parameters; the command line names its flags."""
    with pytest.raises(vaekit.VaekitError) as raised:
        api_call(trained, str(blobs_npz))
    assert api in str(raised.value) and "--" not in str(raised.value)
    capsys.readouterr()
    values = {"run": trained, "data": blobs_npz, "tmp": tmp_path}
    assert main([a.format(**values) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and cli in err[0], err


def test_corrupt_weights_and_wrong_shapes_are_reported(trained, tmp_path, capsys):
    np.save(tmp_path / "wide.npy", np.zeros((3, 10)))
    assert main(["reconstruct", str(trained), "--data", str(tmp_path / "wide.npy"),
                 "--out", str(tmp_path / "r.npy")]) == 2
    assert "trained on 8x8 grayscale images" in capsys.readouterr().err
    assert not (tmp_path / "r.npy").exists()

    assert main(["sample", str(trained), "--out", str(tmp_path / "s.txt")]) == 2
    assert "unsupported file type" in capsys.readouterr().err

    (trained / "model.safetensors").write_bytes(b"\x00" * 16)
    assert main(["sample", str(trained), "--out", str(tmp_path / "s.npy")]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_own_rgb_image_folder_end_to_end(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("red", "blue"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 60, (10 + i % 3, 9, 3), dtype=np.uint8)
            pixels[..., 0 if label == "red" else 2] += 180
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "imgs"), "--image-size", "8x6", "--out", str(run),
                 "--val-fraction", "0.25", *TINY_ARGS]) == 0
    assert (run / "reconstructions.png").exists() and (run / "samples.png").exists()
    assert main(["reconstruct", str(run), "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "r.npy")]) == 0
    assert np.load(tmp_path / "r.npy").shape == (24, 8, 6, 3)  # resized like training, channel-last


def test_own_csv_table_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 3)) * [1, 10, 100]
    lines = ["height,weight,price,label"] + [f"{a},{b},{c},{i % 2}" for i, (a, b, c) in enumerate(x)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "t.csv"), "--model", "ae", "--out", str(run), *TINY_ARGS]) == 0
    assert main(["reconstruct", str(run), "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "r.csv")]) == 0
    out = (tmp_path / "r.csv").read_text().splitlines()
    assert out[0] == "height,weight,price" and len(out) == 151
    assert main(["reconstruct", str(run), "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "r.png")]) == 2
    assert "cannot be drawn" in capsys.readouterr().err


def test_many_samples_stream_to_a_file_and_match_the_api(trained, tmp_path, capsys):
    """5,000 samples cross the 4,096 drawn at a time: the file holds what Run.sample gives."""
    run = vaekit.load(trained)
    want = run.sample(5000, seed=4)
    for suffix in (".npy", ".parquet"):
        assert main(["sample", str(trained), "--n", "5000", "--seed", "4", "--out", str(tmp_path / f"s{suffix}")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), want)
    import pandas as pd

    np.testing.assert_allclose(pd.read_parquet(tmp_path / "s.parquet").to_numpy(), want.reshape(5000, -1))
    capsys.readouterr()
    assert main(["sample", str(trained), "--n", "20000", "--out", str(tmp_path / "s.png")]) == 2
    assert "too many to draw as one picture" in capsys.readouterr().err and not (tmp_path / "s.png").exists()
