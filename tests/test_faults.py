"""Nothing lost, ever: bad input and faults through the command line as a user meets them.

Every bad input ends with exit status 2, one line on stderr and no traceback, and leaves
what existed as it was; a run interrupted at any point (killed, a full disk, a second
writer, a cut metrics line) either resumes or is trained anew into the same folder.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vaekit
from helpers import TINY, copy_run
from vaekit.cli import main
from vaekit.runfolder import RunFolder

TINY_ARGS = ["--hidden-dims", "32", "--latent-dim", "4", "--batch-size", "32", "--quiet", "--no-report"]


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def epochs(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def run(trained_once, tmp_path):
    return copy_run(trained_once("faults", "--epochs", "2", *TINY_ARGS), tmp_path / "run")


def write_inputs(folder: Path, blobs) -> dict:
    x, y = blobs
    files = {"minus.npz": dict(X=x, y=np.where(y == 2, -1, y)), "complex.npy": x[:, 0].astype(np.complex64),
             "images.npz": dict(X=x, y=y)}
    for name, value in files.items():
        (np.savez if name.endswith(".npz") else np.save)(folder / name, **value) if isinstance(value, dict) \
            else np.save(folder / name, value)
    (folder / "empty.npy").write_bytes(b"")
    (folder / "two-labels.csv").write_text("a,b,y,label\n1,2,0,1\n3,4,1,0\n5,6,0,0\n")
    return {name: folder / name for name in [*files, "empty.npy", "two-labels.csv"]}


# (arguments, what the one line must say); {run} is a trained run folder, {dir} the test's folder
BAD = [
    (["train", "--data", "{dir}/minus.npz", "--model", "cvae", "--out", "{dir}/new", "--quiet"],
     "renumber the classes from 0"),
    (["train", "--data", "{dir}/two-labels.csv", "--out", "{dir}/new", "--quiet"], "are both label columns"),
    (["train", "--data", "{dir}/complex.npy", "--out", "{dir}/new", "--quiet"], "complex numbers"),
    (["train", "--data", "{dir}/empty.npy", "--out", "{dir}/new", "--quiet"], "not a readable .npy file"),
    (["train", "--data", "{dir}/images.npz", "--image-size", "4", "--out", "{dir}/new", "--quiet"],
     "--image-size resizes the images of an image folder"),
    (["train", "--resume", "{run}", "--out", "{dir}/new"], "--out cannot go with --resume"),
    (["train", "--resume", "{run}", "--epochs", "2"], "already trained 2 epochs"),
    (["train", "--epochs", "x"], "argument --epochs: expected a whole number"),
    (["train", "--bogus", "3"], "vaekit train: error: unrecognized arguments: --bogus 3"),
    (["latent", "{run}", "--max-points", "0", "--out", "{dir}/m.png"], "argument --max-points: must be at least 1"),
    (["sample", "{run}", "--label", "1", "--out", "{dir}/s.npy"], "--label needs a conditional model"),
    (["interpolate", "{run}", "--data", "{dir}/images.npz", "--from", "0", "--to", "9999", "--out", "{dir}/p.npy"],
     "--to 9999 is out of range"),
    (["sample", "{run}", "--out", "{dir}/s.txt"], "unsupported file type"),
    (["evaluate", "{dir}/nowhere"], "no such run folder"),
]


@pytest.mark.parametrize("argv, says", BAD, ids=[" ".join(a[:2]) + f" [{i}]" for i, (a, _) in enumerate(BAD)])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(run, blobs, tmp_path, capsys, argv, says):
    write_inputs(tmp_path, blobs)
    before, listing = snapshot(run), sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    assert main([a.format(run=run, dir=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert snapshot(run) == before and sorted(p.name for p in tmp_path.iterdir()) == listing


def test_a_run_damaged_state_is_one_line_that_never_advises_an_unsafe_load(run, capsys):
    (run / "training_state.pt").write_bytes(b"not a checkpoint" * 10)
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is damaged" in err[0] and "weights_only" not in err[0], err
    assert snapshot(run) == before


def test_data_paths_are_found_from_any_working_directory(tmp_path, blobs_npz, monkeypatch):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "d.npz").write_bytes(blobs_npz.read_bytes())
    monkeypatch.chdir(here)
    assert main(["train", "--data", "d.npz", "--out", "R", "--epochs", "1", *TINY_ARGS]) == 0
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(here / "R")]) == 0
    assert main(["latent", "../here/R", "--out", "m.png"]) == 0
    assert main(["train", "--resume", "../here/R", "--epochs", "2", "--quiet", "--no-report"]) == 0
    assert epochs(here / "R") == [1, 2]


def test_sixteen_bit_images_are_scaled_like_eight_bit_ones(tmp_path, blobs):
    x, _ = blobs
    np.save(tmp_path / "u8.npy", x)
    np.save(tmp_path / "u16.npy", x.astype(np.uint16) * 257)  # the same images at 16 bits (255 -> 65535)
    runs = [vaekit.train(str(tmp_path / f"{n}.npy"), out=tmp_path / n, hidden_dims=(32,), latent_dim=4, epochs=1,
                         progress=False, report=False) for n in ("u8", "u16")]
    assert runs[1].config.model.likelihood == runs[0].config.model.likelihood == "bernoulli"
    assert runs[1].metrics()[-1]["val_loss"] == pytest.approx(runs[0].metrics()[-1]["val_loss"], rel=1e-3)


def test_csv_quirks_a_byte_order_mark_and_a_one_row_table(tmp_path, capsys):
    (tmp_path / "bom.csv").write_text("a,b,c\n" + "".join(f"{i},{i % 3},{i % 5}\n" for i in range(40)),
                                      encoding="utf-8-sig")
    run = vaekit.train(str(tmp_path / "bom.csv"), out=tmp_path / "bom", epochs=1, progress=False, report=False)
    assert run.config.data.columns == ["a", "b", "c"]
    (tmp_path / "one.csv").write_text("a,b,c\n1,2,3\n")
    assert main(["train", "--data", str(tmp_path / "one.csv"), "--out", str(tmp_path / "one"), "--epochs", "1",
                 "--val-fraction", "0", "--quiet"]) == 0
    assert (tmp_path / "one" / "report.html").exists()


def test_divergence_stops_at_once_and_the_folder_is_trained_anew(tmp_path, blobs_npz, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(blobs_npz), "--out", str(out), "--epochs", "3", "--lr", "1e6",
                 *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training diverged" in err[0] and "lower --lr (now 1e+06)" in err[0], err
    assert f"{out} has no finished epoch yet: train again with --out {out}" in err[0]
    # nothing was trained, so the same --out takes a new run (no cleaning up by hand)
    assert main(["train", "--data", str(blobs_npz), "--out", str(out), "--epochs", "2", *TINY_ARGS]) == 0
    assert epochs(out) == [1, 2]


def test_a_folder_of_another_program_is_never_taken_over(tmp_path, blobs_npz, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"name": "not vaekit"}')
    assert main(["train", "--data", str(blobs_npz), "--out", str(theirs), *TINY_ARGS]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (theirs / "config.json").read_text() == '{"name": "not vaekit"}'


def test_a_second_writer_is_refused_while_the_first_holds_the_run(run, capsys):
    from vaekit.runfolder import RunLock

    first = RunLock(run)  # another process training this run (flock conflicts between open files)
    before = snapshot(run)
    try:
        assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet"]) == 2
    finally:
        first.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is being written by another vaekit process" in err[0], err
    assert snapshot(run) == before
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet", "--no-report"]) == 0  # free again
    assert epochs(run) == [1, 2, 3]


def test_a_cut_metrics_line_is_read_past(run, capsys):
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_lo')  # a crash mid-write, by an older vaekit or another tool
    assert main(["info", str(run)]) == 0
    assert main(["report", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet", "--no-report"]) == 0
    assert epochs(run) == [1, 2, 3]


def test_a_write_cut_short_by_a_kill_leaves_nothing_in_the_way(run):
    # kill -9 in the middle of a checkpoint: the new file is a hidden temporary, never renamed
    # into place (tested above with real kills); its remains are cleared when the run goes on
    before = snapshot(run)
    (run / ".training_state.k1ll.pt").write_bytes(b"half a checkpo")
    (run / ".metrics.k1ll.jsonl").write_text('{"epoch": 3, "tr')
    assert snapshot(run) == before  # what a reader sees is whole
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet", "--no-report"]) == 0
    assert epochs(run) == [1, 2, 3] and not [p for p in run.iterdir() if ".k1ll." in p.name]


def test_a_full_disk_is_one_line_and_the_run_resumes_once_there_is_room(run, capsys, monkeypatch):
    import shutil

    import torch

    from vaekit import atomic

    real_save, usage = torch.save, shutil.disk_usage(run)

    def full(*args, **kwargs):  # as torch.save fails when the disk fills up mid-file
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 150784 vs 150676")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: usage._replace(free=4096))
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on the device" in err[0] and f"--resume {run}" in err[0], err
    after = snapshot(run)  # the checkpoint and the metrics are whole and unchanged
    assert all(after[name] == before[name] for name in ("training_state.pt", "metrics.jsonl"))
    assert not [p for p in run.iterdir() if p.name.startswith(".training_state")]  # no temporary left
    monkeypatch.setattr(torch, "save", real_save)
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet", "--no-report"]) == 0
    assert epochs(run) == [1, 2, 3, 4]


def test_a_folder_left_holding_only_vaekits_lock_is_trained_anew_and_nothing_else_is_taken(tmp_path, blobs_npz,
                                                                                            capsys):
    """A run killed while writing its config leaves only the lock (and perhaps a temporary):
    train and detect fit use the folder; a folder that also holds anything else is refused."""
    for name in ("run", "det", "kept"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".vaekit.lock").write_text("4242")
    (tmp_path / "run" / ".config.x1y2.json").write_text('{"mod')
    (tmp_path / "kept" / ".git").mkdir()
    assert main(["train", "--data", str(blobs_npz), "--out", str(tmp_path / "run"), "--epochs", "1",
                 *TINY_ARGS]) == 0
    assert epochs(tmp_path / "run") == [1] and not (tmp_path / "run" / ".config.x1y2.json").exists()
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32))
    assert main(["detect", "fit", "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "det"), "--epochs", "2",
                 "--quiet"]) == 0
    assert vaekit.AnomalyDetector.load(tmp_path / "det").decision_function(np.zeros((2, 3), np.float32)).shape == (2,)
    capsys.readouterr()
    for argv in (["train", "--data", str(blobs_npz)], ["detect", "fit", "--data", str(tmp_path / "x.npy")]):
        assert main([*argv, "--out", str(tmp_path / "kept"), "--epochs", "1", "--quiet"]) == 2
        assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == [".git", ".vaekit.lock"]


class Killed(BaseException):
    """The process dying at this point: nothing catches it, nothing after it runs."""


def test_a_training_that_dies_before_any_of_its_writes_goes_on_to_the_same_end(tmp_path, blobs_npz, monkeypatch):
    """Every write of a run folder's own files (config, weights, checkpoint, metrics) is a
    point where the process may die. Dying just before each one in turn, then going on
    (--resume, or training anew where nothing was written), ends with every epoch's metrics
    line once, and the same losses as a training that never stopped."""
    from vaekit import runfolder

    options = dict(TINY, epochs=2, patience=None)
    whole = vaekit.train(str(blobs_npz), out=tmp_path / "whole", **options)
    expected = [m["train_loss"] for m in whole.metrics()]
    real, writes = runfolder.atomic_write, []

    def counting(path, write):
        writes.append(path)
        return real(path, write)

    monkeypatch.setattr(runfolder, "atomic_write", counting)
    vaekit.train(str(blobs_npz), out=tmp_path / "counted", **options)
    assert len(writes) >= 1 + 2 * 2  # the config; each epoch: the checkpoint and the metrics line at least

    def dying_at(k: int, calls: list):
        def write(path, writer):
            calls.append(path)
            if len(calls) == k + 1:
                raise Killed(path)
            return real(path, writer)
        return write

    for k in range(len(writes)):
        out, calls = tmp_path / f"died-{k}", []
        monkeypatch.setattr(runfolder, "atomic_write", dying_at(k, calls))
        with pytest.raises(Killed):
            vaekit.train(str(blobs_npz), out=out, **options)
        monkeypatch.setattr(runfolder, "atomic_write", real)
        if (out / "config.json").exists():
            try:
                vaekit.train(resume=out, progress=False, report=False)
            except vaekit.VaekitError as e:  # died after its last checkpoint: nothing left to train
                assert "already trained 2 epochs" in str(e), (k, calls[-1].name)
        else:  # died writing its config: the folder is empty, and training starts anew in it
            vaekit.train(str(blobs_npz), out=out, **options)
        assert [m["epoch"] for m in RunFolder(out).metrics()] == [1, 2], (k, calls[-1].name)
        assert [m["train_loss"] for m in RunFolder(out).metrics()] == pytest.approx(expected), k


@pytest.mark.slow
def test_a_training_killed_at_random_moments_always_resumes_to_the_same_end(tmp_path, blobs_npz):
    """kill -9 at seeded random moments, from before the first checkpoint to the last epochs
    (checkpoint writes included); after each, ``--resume`` (or training anew into a folder
    that never finished an epoch) carries on, and the finished run has every epoch once."""
    out, total = tmp_path / "run", 8
    train = [sys.executable, "-m", "vaekit", "train", "--data", str(blobs_npz), "--out", str(out),
             "--epochs", str(total), "--patience", "100", *TINY_ARGS, "--batch-size", "4"]  # slower epochs
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    rng, killed_after = random.Random(0), []

    def done() -> int:
        return len(epochs(out)) if (out / "metrics.jsonl").exists() else 0

    for more in (0, 1, 2, 1, 2):  # kill once this many more epochs are done, then a random moment later
        cmd = train if not (out / "training_state.pt").exists() else \
            [*train[:4], "--resume", str(out), "--quiet", "--no-report"]
        target = done() + more
        job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        while job.poll() is None and not ((out / "config.json").exists() and done() >= target):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2) if more else 0.0)  # the first: before any epoch can end
        if job.poll() is None:
            job.send_signal(signal.SIGKILL)
        job.communicate()
        killed_after.append(done())
        if job.returncode == 0 or done() == total:  # finished (perhaps killed after its last epoch)
            break
        assert job.returncode == -signal.SIGKILL, (target, job.returncode)
    final = subprocess.run([*train[:4], "--resume", str(out), "--quiet", "--no-report"], capture_output=True,
                           text=True, env=env)
    assert final.returncode in (0, 2), final.stderr  # 2: it had already finished every epoch
    assert epochs(out) == list(range(1, total + 1))
    assert vaekit.load(out).sample(2).shape == (2, 8, 8)
    assert killed_after[0] == 0 and max(killed_after) > 0, killed_after  # before any epoch, and after some


def test_a_detector_whose_fit_fails_is_left_unfitted_not_half_fitted():
    from sklearn.exceptions import NotFittedError

    X = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    det = vaekit.AnomalyDetector(epochs=2, random_state=0).fit(X)
    assert det.decision_function(X).shape == (200,)
    with pytest.raises(vaekit.VaekitError, match="training diverged.*lower lr"), pytest.warns(vaekit.VaekitWarning):
        det.set_params(lr=1e6).fit(X * 1e3)  # diverges at every rate it is tried at
    with pytest.raises(NotFittedError):
        det.decision_function(X)
    assert not [k for k in vars(det) if k.endswith("_") and not k.startswith("_")]


def test_a_checkpoint_of_another_run_or_of_nothing_is_refused_in_one_line(run, tmp_path, blobs, capsys):
    import torch

    before = snapshot(run)
    torch.save({"foo": 1}, run / "training_state.pt")  # readable, but no checkpoint
    wrong = snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 2
    assert "is damaged or not this run's" in capsys.readouterr().err
    np.save(tmp_path / "wide.npy", np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32))
    other = tmp_path / "other"
    assert main(["train", "--data", str(tmp_path / "wide.npy"), "--out", str(other), "--epochs", "1", *TINY_ARGS]) == 0
    (run / "training_state.pt").write_bytes((other / "training_state.pt").read_bytes())  # another model's
    wrong = snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another model's weights" in err[0], err
    assert snapshot(run) == wrong and before["config.json"] == wrong["config.json"]


def test_sixteen_bit_pngs_in_a_folder_are_scaled_not_clipped(tmp_path, blobs):
    from PIL import Image

    x, _ = blobs
    for depth, folder in ((8, tmp_path / "eight"), (16, tmp_path / "sixteen")):
        folder.mkdir()
        for i in range(40):
            pixels = x[i] if depth == 8 else x[i].astype(np.uint16) * 257
            Image.fromarray(pixels).save(folder / f"{i}.png")
    from vaekit.data import load_dataset

    eight, sixteen = load_dataset(str(tmp_path / "eight")), load_dataset(str(tmp_path / "sixteen"))
    assert Image.open(tmp_path / "sixteen" / "0.png").mode.startswith("I")
    np.testing.assert_array_equal(eight.batch().numpy(), sixteen.batch().numpy())


def test_python_options_of_the_wrong_type_are_one_clear_error(blobs_npz):
    for options, says in ((dict(epochs="x"), "epochs must be a whole number, got 'x'"),
                          (dict(hidden_dims="32,x"), "hidden_dims must be whole numbers"),
                          (dict(lr="fast"), "lr must be a number, got 'fast'"),
                          (dict(time_budget="1h"), "time_budget must be a number")):
        with pytest.raises(vaekit.VaekitError, match=says):
            vaekit.train(str(blobs_npz), **options)


@pytest.mark.slow
def test_sigterm_ends_a_training_with_one_line_that_says_how_to_go_on(tmp_path, blobs_npz):
    out = tmp_path / "run"
    job = subprocess.Popen([sys.executable, "-m", "vaekit", "train", "--data", str(blobs_npz), "--out", str(out),
                            "--epochs", "200", "--patience", "500", *TINY_ARGS, "--batch-size", "4"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    while job.poll() is None and not ((out / "metrics.jsonl").exists() and len(epochs(out)) >= 1):
        time.sleep(0.01)
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "vaekit train: error: stopped (SIGTERM); " in lines[0] and \
        f"continue with --resume {out}" in lines[0], lines
    assert main(["train", "--resume", str(out), "--epochs", str(len(epochs(out)) + 1), "--quiet", "--no-report"]) == 0
