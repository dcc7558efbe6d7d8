"""Training past one process: the same model at any world size, samples/s at 1 and N
processes, and the gradient all-reduce's share of a training step.

Protocol: the classic VAE (784-400-20), batch 128, 10 epochs on the first 8,000 MNIST test
images (no validation split, seed 1); test -ELBO on the last 2,000. One process, then
``torchrun --nproc-per-node N`` (gloo on the CPU with one thread per process; NCCL with one
GPU per process given ``--device cuda``). The all-reduce share compares DDP steps with and
without gradient synchronisation (``no_sync``) on the same data.

    python bench/scale.py [--procs 2] [--epochs 10] [--device cpu|cuda]

On a machine with N GPUs: ``python bench/scale.py --device cuda --procs N``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _shared import ROOT, mnist_split

STEP_PROFILE = """
import contextlib, sys, time, torch, torch.distributed as dist
import vaekit
from vaekit import distributed
from vaekit.config import TrainConfig
from vaekit.objectives import KLWeights
from vaekit.training import Trainer

device_name, steps = sys.argv[1], int(sys.argv[2])
world = distributed.join()
device = distributed.device_for(torch.device(device_name), world)
trainer = Trainer(vaekit.VAE(), TrainConfig(precision="fp32", progress=False), device, world=world)
x = torch.rand(128 // world.size, 1, 28, 28, device=device)

def step(sync):
    with (contextlib.nullcontext() if sync else trainer.step_objective.no_sync()):
        loss = trainer.step_objective(x, x, KLWeights(), None)["loss"].sum() * (world.size / 128)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
    trainer.optimizer.step()

def timed(sync):
    for _ in range(10):
        step(sync)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(sync)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps

rounds = [(timed(True), timed(False)) for _ in range(3)]
if world.is_main:
    print("STEP", min(r[0] for r in rounds), min(r[1] for r in rounds))
distributed.leave()
"""


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "vaekit", *map(str, args)]


def torchrun(procs: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)]


def train(prefix: list[str], train_file: Path, out: Path, epochs: int, device: str, env: dict) -> dict:
    subprocess.run([*prefix, *cli("train", "--data", train_file, "--epochs", epochs, "--val-fraction", 0, "--seed", 1,
                                  "--precision", "fp32", "--device", device, "--out", out, "--quiet",
                                  "--no-report")[1:]],
                   check=True, cwd=ROOT, env=env, capture_output=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"samples_per_s": statistics.median(r["samples_per_s"] for r in rows[1:]),  # the first warms up
            "world_size": rows[-1]["world_size"]}


def test_loss(run: Path, test_file: Path) -> float:
    out = subprocess.run(cli("evaluate", run, "--data", test_file, "--json"), check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout
    return json.loads(out)["neg_elbo"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--steps", type=int, default=200, help="steps per timing of the all-reduce share")
    a = p.parse_args()
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_file, test_file = mnist_split(tmp)
        print(f"classic VAE, batch 128, {a.epochs} epochs on the first 8,000 MNIST test images, fp32, "
              f"device {a.device}; test -ELBO on the last 2,000 (nats per sample)")
        rows = []
        t0 = time.perf_counter()
        single = train([sys.executable], train_file, tmp / "one", a.epochs, a.device, os.environ)
        rows.append(("1 process (all threads)", single, test_loss(tmp / "one", test_file)))
        if a.device == "cpu":
            single1 = train([sys.executable], train_file, tmp / "one-1t", a.epochs, a.device, one_thread)
            rows.append(("1 process, 1 thread", single1, test_loss(tmp / "one-1t", test_file)))
        many = train(torchrun(a.procs), train_file, tmp / "many", a.epochs, a.device, one_thread)
        rows.append((f"torchrun {a.procs} processes, 1 thread each", many, test_loss(tmp / "many", test_file)))
        for name, r, loss in rows:
            print(f"  {name:36} test -ELBO {loss:7.2f}  {r['samples_per_s']:9,.0f} samples/s (global)  "
                  f"world size {r['world_size']}")
        gap = rows[-1][2] - rows[0][2]
        print(f"  {a.procs} processes vs 1: {gap:+.2f} nats ({'within' if abs(gap) <= 1 else 'MORE than'} 1 nat); "
              f"speed x{rows[-1][1]['samples_per_s'] / rows[0][1]['samples_per_s']:.2f}")

        script = tmp / "step_profile.py"
        script.write_text(STEP_PROFILE)
        out = subprocess.run([*torchrun(a.procs), str(script), a.device, str(a.steps)], check=True, capture_output=True,
                             text=True, cwd=ROOT, env=one_thread).stdout
        synced, local = map(float, next(line for line in out.splitlines() if line.startswith("STEP")).split()[1:])
        print(f"  a step of {a.procs} ranks x {128 // a.procs} samples: {synced * 1e3:.2f} ms with the gradient "
              f"all-reduce, {local * 1e3:.2f} ms without (no_sync): the all-reduce (and waiting for the other "
              f"ranks) is {1 - local / synced:.0%} of a step")
        print(f"  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
