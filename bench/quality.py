"""Quality of the default VAE against the reference loop, on the same protocol.

Both train 10 epochs on the first 8,000 MNIST test images (no validation split) and
report the test loss per sample (negative ELBO, one posterior draw) on the last 2,000.

    python bench/quality.py [--epochs 10]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _shared import ROOT, mnist_split, run_reference


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train_file, test_file = mnist_split(Path(tmp))
        cli = [sys.executable, "-m", "vaekit"]
        ours = {}
        for precision in ("auto", "fp32"):
            run = Path(tmp) / f"run-{precision}"
            subprocess.run([*cli, "train", "--data", str(train_file), "--epochs", str(a.epochs),
                            "--val-fraction", "0", "--seed", "1", "--precision", precision, "--out", str(run),
                            "--quiet"], check=True, cwd=ROOT, capture_output=True)
            out = subprocess.run([*cli, "evaluate", str(run), "--data", str(test_file), "--json"],
                                 check=True, capture_output=True, text=True, cwd=ROOT).stdout
            used = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["precision"]
            ours[f"{precision} -> {used}" if precision == "auto" else precision] = json.loads(out)
        ref = run_reference(a.epochs)
    print(f"{a.epochs} epochs on the first 8,000 MNIST test images, test loss on the last 2,000 "
          "(nats per sample, lower is better)")
    print(f"{'reference loop (fp32)':32} test loss {ref['test_loss']:8.2f}")
    for name, m in ours.items():
        diff = m["neg_elbo"] - ref["test_loss"]
        verdict = "within 1 nat or below" if diff <= 1 else "MORE than 1 nat worse"
        print(f"{'vaekit (' + name + ')':32} neg_elbo  {m['neg_elbo']:8.2f}  {diff:+.2f} vs reference, {verdict} "
              f"(recon {m['recon']:.2f} + kl {m['kl']:.2f}; psnr {m['psnr']:.1f} dB)")


if __name__ == "__main__":
    main()
