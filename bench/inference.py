"""Inference throughput, start-up time and peak memory.

- Scoring 100,000 tabular rows (20 features): vaekit's decision_function, the same
  detector exported to ONNX Runtime, and PyOD's AutoEncoder decision_function.
- Encoding and reconstructing 100,000 MNIST-sized images with the classic VAE: vaekit's
  batched Run methods, a naive loop of batch-1 calls on the eager model (a user's
  hand-written loop), and ONNX Runtime.
- `vaekit --help` wall time (torch is not imported for it).
- Peak memory (RSS) of training the default VAE on 60,000 MNIST-sized images, and of
  scoring 1,000,000 rows (streamed in chunks: intermediates never exist for all rows at once).

    python bench/inference.py
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROWS, FEATURES = 100_000, 20


def rate(fn, n: int, repeats: int = 5) -> float:
    best = min(_timed(fn) for _ in range(repeats))
    return n / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def peak_rss_mb(code: str) -> float:
    return statistics.median(_peak_rss_mb(code) for _ in range(3))


def _peak_rss_mb(code: str) -> float:
    """Peak resident memory of a fresh interpreter running ``code``: its VmHWM, which (unlike
    ru_maxrss) starts afresh at exec instead of inheriting this process's peak."""
    report = ("\nprint([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024)")
    out = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import onnxruntime as ort
    import torch

    import vaekit
    from vaekit.config import DataConfig, ModelConfig, RunConfig
    from vaekit.export import Encoder, _export, export_onnx
    from vaekit.run import Run

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(FEATURES, FEATURES))
    rows = (rng.normal(size=(ROWS, FEATURES)) @ mix).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"Scoring {ROWS:,} tabular rows x {FEATURES} features (rows per second)")
        det = vaekit.AnomalyDetector(random_state=0).fit(rows[:5000])
        det.save(tmp / "det")
        scorer = ort.InferenceSession(str(export_onnx(tmp / "det", tmp / "det-onnx")[2]),
                                      providers=["CPUExecutionProvider"])
        from pyod.models.auto_encoder import AutoEncoder

        pyod = AutoEncoder(preprocessing=False, verbose=0, epoch_num=1).fit(rows[:5000])
        results = {"vaekit decision_function": rate(lambda: det.decision_function(rows), ROWS),
                   "vaekit scorer.onnx (ONNX Runtime)": rate(lambda: scorer.run(None, {"x": rows}), ROWS),
                   "PyOD AutoEncoder decision_function": rate(lambda: pyod.decision_function(rows), ROWS)}
        for name, value in results.items():
            print(f"  {name:38}{value:>12,.0f}")

        print(f"Encoding / reconstructing {ROWS:,} 28x28 images with the classic VAE (images per second)")
        images = rng.random((ROWS, 28, 28), dtype=np.float32)
        model = vaekit.VAE().eval()  # speed does not depend on the weights
        config = RunConfig(model=ModelConfig(input_shape=(1, 28, 28), likelihood="bernoulli"),
                           data=DataConfig(layout="gray"))
        run = Run(model, config, None, torch.device("cpu"))
        encoder = ort.InferenceSession(str(_export(Encoder(model), (torch.rand(2, 1, 28, 28),), ["x"],
                                                   ["loc", "scale"], tmp / "encoder.onnx")),
                                       providers=["CPUExecutionProvider"])
        first = torch.from_numpy(images[:2000, None])

        def naive():  # a hand-written loop over single images
            with torch.no_grad():
                for x in first:
                    model.posterior_params(x[None])

        results = {"vaekit Run.encode (batched)": rate(lambda: run.encode(images), ROWS),
                   "vaekit Run.reconstruct (batched)": rate(lambda: run.reconstruct(images), ROWS),
                   "eager model, one image per call": rate(naive, len(first)),
                   "encoder.onnx (ONNX Runtime)": rate(lambda: encoder.run(None, {"x": images[:, None]}), ROWS)}
        for name, value in results.items():
            print(f"  {name:38}{value:>12,.0f}")

    starts = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vaekit", "--help"], capture_output=True, check=True)
        starts.append(time.perf_counter() - t0)
    print(f"Start-up: `vaekit --help` {statistics.median(starts) * 1000:.0f} ms (median of 5, Python start included)")

    base = peak_rss_mb("import torch, vaekit.run")
    train = peak_rss_mb(
        "import numpy as np, tempfile, vaekit\n"
        "x = (np.random.default_rng(0).random((60000, 28, 28)) * 255).astype(np.uint8)\n"
        "vaekit.train(x, out=tempfile.mkdtemp() + '/r', epochs=1, progress=False)")
    score = peak_rss_mb(
        "import numpy as np, vaekit\n"
        "rng = np.random.default_rng(0)\n"
        "det = vaekit.AnomalyDetector(random_state=0, epochs=5).fit(rng.normal(size=(2000, 20)).astype(np.float32))\n"
        "rows = rng.standard_normal((1_000_000, 20), dtype=np.float32)\n"
        "s = det.decision_function(rows)")
    print(f"Peak memory (RSS, median of 3 fresh processes; glibc's allocator makes it vary): torch + vaekit "
          f"imported {base:,.0f} MB; training the classic VAE on 60,000 28x28 images {train:,.0f} MB; fitting a "
          f"detector and scoring 1,000,000 rows x 20 {score:,.0f} MB (the rows themselves: "
          f"{1_000_000 * 20 * 4 / 2**20:,.0f} MB)")


if __name__ == "__main__":
    main()
