"""Training and scoring with several processes, as torchrun starts them: real 2-process gloo
jobs on localhost. One model, one run folder, the same weights on every rank; one process
and two give the same training; resume at another world size; a killed rank ends the job
with one clear line and a folder that resumes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest
import torch

import vaekit
from helpers import TINY
from vaekit.data.parquet import write_parquet

pytestmark = pytest.mark.slow  # every test starts real processes

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def torchrun(*args, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=ENV)


def vaekit_lines(stderr: str) -> list[str]:
    """What vaekit itself printed (torchrun adds its own warnings and failure summary)."""
    return [line for line in stderr.splitlines() if line.startswith(("vaekit", "epoch", "trained"))]


def table(n: int = 300, seed: int = 0) -> np.ndarray:
    """Readings with offsets and scales: standardised, and modelled with a learned scale per feature."""
    return (np.random.default_rng(seed).normal(size=(n, 6)) * [1, 2, 3, 4, 5, 6] + 10).astype(np.float32)


AE = dict(model="ae", hidden_dims=(16,), latent_dim=3, epochs=3, batch_size=50, precision="fp32", progress=False,
          report=False)


def test_two_processes_train_one_model_in_one_run_folder(tmp_path):
    """The same global batches, split over two ranks, give the weights one process gets (an AE
    has no sampling, so the only difference is the order of float additions). The AE keeps a
    likelihood scale that its loss never uses: DDP must not trip over it."""
    np.save(tmp_path / "x.npy", table())
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent(f"""
        import sys, numpy as np, torch, torch.distributed as dist, vaekit
        run = vaekit.train("x.npy", out="ddp", **{AE!r})
        torch.save(run.model.state_dict(), f"weights-{{dist.get_rank()}}.pt")
    """))
    done = torchrun(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ranks = [torch.load(tmp_path / f"weights-{r}.pt") for r in (0, 1)]
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name])  # DDP keeps the ranks identical

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["ddp"]  # one folder, from rank 0
    saved = vaekit.load(tmp_path / "ddp")
    for name, value in saved.model.state_dict().items():
        assert torch.equal(value, ranks[0][name])
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["train"]["world_size"] == 2
    metrics = saved.metrics()
    assert [m["world_size"] for m in metrics] == [2, 2, 2]

    single = vaekit.train(table(), out=tmp_path / "single", **AE)
    assert single.config.model.likelihood == "gaussian-learned"
    for name, value in single.model.state_dict().items():
        np.testing.assert_allclose(value.numpy(), ranks[0][name].numpy(), rtol=1e-4, atol=1e-6)
    assert [m["train_loss"] for m in metrics] == pytest.approx([m["train_loss"] for m in single.metrics()], rel=1e-5)


def test_command_line_under_torchrun_prints_once_and_resumes_at_another_world_size(tmp_path, blobs_npz):
    vaekit.train(str(blobs_npz), out=tmp_path / "run", **{**TINY, "epochs": 2, "patience": None})
    done = torchrun("-m", "vaekit", "train", "--resume", tmp_path / "run", "--epochs", 4, "--no-report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(tmp_path / "run")]  # rank 0 alone prints results
    lines = vaekit_lines(done.stderr)
    assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["3/4", "4/4"]  # not twice
    assert sum(line.startswith("trained") for line in lines) == 1
    metrics = vaekit.load(tmp_path / "run").metrics()
    assert [(m["epoch"], m["world_size"]) for m in metrics] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert metrics[-1]["val_loss"] < metrics[0]["val_loss"]

    # rank 0's error (the folder exists) is printed once; the other rank exits quietly, also with 2
    again = torchrun("-m", "vaekit", "train", "--data", blobs_npz, "--out", tmp_path / "run", cwd=tmp_path)
    errors = [line for line in again.stderr.splitlines() if line.startswith("vaekit train: error")]
    assert errors == [f"vaekit train: error: {tmp_path / 'run'} already exists; choose another --out, or continue "
                      f"it with --resume {tmp_path / 'run'}"]
    assert again.stderr.count("exitcode  : 2") == 2  # torchrun's summary of both ranks


def test_sharded_encoding_and_scoring_write_one_file_in_input_order(tmp_path):
    rng = np.random.default_rng(0)
    x = table(5001)  # an odd count: the ranks' shares differ in size
    np.save(tmp_path / "x.npy", x)
    labels = (rng.random(len(x)) < 0.1).astype(int)
    write_parquet(tmp_path / "x.parquet", x, [f"f{i}" for i in range(6)], labels, row_group_rows=700)
    run = vaekit.train(x, out=tmp_path / "run", **{**AE, "model": "vae"})
    det = vaekit.AnomalyDetector(epochs=2, random_state=0).fit(x[:1000])
    det.save(tmp_path / "det")

    # both commands in one job (a job's start costs seconds): the group is the script's, so each
    # command uses it as it finds it, as under any launcher
    script = tmp_path / "both.py"
    script.write_text(textwrap.dedent("""
        import torch.distributed as dist
        from vaekit.cli import main
        dist.init_process_group("gloo")
        assert main(["encode", "run", "--data", "x.npy", "--out", "z.npy"]) == 0
        if dist.get_rank() == 0:
            print("---", flush=True)
        assert main(["detect", "score", "det", "--data", "x.parquet", "--out", "s.csv", "--json"]) == 0
        dist.destroy_process_group()
    """))
    done = torchrun(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), run.encode(x), rtol=1e-5, atol=1e-6)
    encoded, scored = done.stdout.split("---\n")
    assert encoded.splitlines() == ["z.npy"]  # rank 0 alone says where the codes went
    written = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(written[:, 0], det.decision_function(x), rtol=1e-6)
    assert (written[:, 1] == (written[:, 0] > det.threshold_)).all()
    metrics = json.loads(scored)  # one JSON object: rank 0's
    assert metrics["n"] == 5001 and metrics["flagged"] == int(written[:, 1].sum()) and "auroc" in metrics
    assert not list(tmp_path.glob(".s.*"))  # no part files left behind


def test_a_killed_rank_ends_the_job_with_one_clear_line_and_the_run_resumes(tmp_path, blobs_npz):
    args = ["-m", "vaekit", "train", "--data", blobs_npz, "--out", tmp_path / "run", "--epochs", 10000,
            "--hidden-dims", 32, "--latent-dim", 4, "--batch-size", 32, "--no-report", "--dist-timeout", 30]
    job = subprocess.Popen([*TORCHRUN, *map(str, args)], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        metrics = tmp_path / "run" / "metrics.jsonl"
        deadline = time.monotonic() + 60
        while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        ranks = {int(p.environ().get("RANK", -1)): p for p in psutil.Process(job.pid).children(recursive=True)
                 if "vaekit" in p.cmdline() and "torch.distributed.run" not in p.cmdline()}
        assert sorted(ranks) == [0, 1], "both ranks should be training"
        ranks[1].kill()
        _, stderr = job.communicate(timeout=60)  # bounded: the survivor notices and gives up
    finally:
        if job.poll() is None:
            for p in psutil.Process(job.pid).children(recursive=True):
                p.kill()
            job.kill()
    assert job.returncode != 0
    errors = [line for line in stderr.splitlines() if line.startswith("vaekit train: error")]
    # rank 0 notices first (a collective fails), or torchrun stops it first: either way one line
    assert len(errors) == 1
    assert "lost contact with the other processes" in errors[0] or "stopped by the launcher" in errors[0]
    assert f"--resume {tmp_path / 'run'}" in errors[0]
    # the folder holds whole checkpoints, and training goes on from the last one in one process
    done = vaekit.load(tmp_path / "run").metrics()[-1]["epoch"]
    resumed = vaekit.train(resume=tmp_path / "run", epochs=done + 1, progress=False, report=False)
    assert resumed.metrics()[-1]["epoch"] == done + 1
