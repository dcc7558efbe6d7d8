"""How close vaekit's memory estimate (vaekit.footprint) comes to what training really takes.

``vaekit train`` refuses a model whose estimated peak exceeds the free memory; the estimate
should therefore never fall short of the real peak (or the kernel, not vaekit, stops the run)
and not be so far above it that models which would fit are refused. For each model below a
fresh process makes its data, notes its resident memory, trains one epoch on 512 rows (with
validation, priors and pictures, as ``vaekit train`` does) and reports its peak resident
memory above that baseline; the row prints the estimate beside it and their ratio. The
baseline holds torch, the data and the process's own overhead, which the estimate leaves to
the data's memory budget. CPU only, about a minute.

    OMP_NUM_THREADS=2 python bench/footprint.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile

BASELINE = "vae, table of 16 columns, hidden 8 (fixed cost)"
CASES = {
    BASELINE: ("table16", {"hidden_dims": (8,)}),
    "vae, mlp, 28x28": ("image28", {}),
    "ae, mlp 4096-4096, 28x28 (weights)": ("image28", {"model": "ae", "hidden_dims": (4096, 4096)}),
    "iwae k=500, 28x28 (draws)": ("image28", {"model": "iwae", "k": 500}),
    "iwae k=2000, 28x28 (draws)": ("image28", {"model": "iwae", "k": 2000}),
    "vae, conv, 64x64": ("image64", {"arch": "conv"}),
    "vae, conv, 64x64, batch 512": ("image64", {"arch": "conv", "batch_size": 512}),
    "hvae, 28x28, batch 1024": ("image28", {"model": "hvae", "batch_size": 1024}),
    "vqvae, 64x64 (with its prior)": ("image64", {"model": "vqvae"}),
    "vae, table of 2000 columns": ("table2000", {}),
}

CHILD = r"""
import json, resource, sys, numpy as np, psutil, torch
import vaekit
from vaekit.footprint import estimate
kind, options, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
x = {"image28": lambda: (rng.random((512, 28, 28)) < 0.3).astype(np.float32),
     "image64": lambda: rng.random((512, 64, 64)).astype(np.float32),
     "table16": lambda: rng.normal(size=(512, 16)).astype(np.float32),
     "table2000": lambda: rng.normal(size=(512, 2000)).astype(np.float32)}[kind]()
if "hidden_dims" in options:
    options["hidden_dims"] = tuple(options["hidden_dims"])
base = psutil.Process().memory_info().rss
run = vaekit.train(x, epochs=1, out=out, progress=False, report=False, **options)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
need = estimate(run.config.model, run.config.train.batch_size)
print(json.dumps({"measured": peak - base, "estimate": need.total}))
"""


def main() -> None:
    print(f"{'model':42s} {'measured':>9s} {'above fixed':>11s} {'estimate':>9s} {'ratio':>6s}")
    ratios, fixed = [], None
    for name, (kind, options) in CASES.items():
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, "-c", CHILD, kind, json.dumps(options), out + "/run"],
                                  capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name:42s} failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        if fixed is None:  # the baseline row: what any training loads beyond the model (libraries, caches)
            fixed = r["measured"] - r["estimate"]
        above = r["measured"] - fixed
        ratio = r["estimate"] / max(above, 1)
        if name != BASELINE:
            ratios.append(ratio)
        print(f"{name:42s} {r['measured'] / 2**20:8.0f}M {above / 2**20:10.0f}M {r['estimate'] / 2**20:8.0f}M "
              f"{ratio:6.2f}")
    if ratios:
        print(f"estimate / measured peak above the fixed cost: {min(ratios):.2f} to {max(ratios):.2f} over "
              f"{len(ratios)} models")


if __name__ == "__main__":
    main()
