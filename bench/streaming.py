"""Data larger than memory: training streamed from a 6 GB .npy under a 1 GB memory budget against
the in-memory path, and scoring 10 million Parquet rows in bounded memory.

1. A uint8 .npy of at least 6 GB (the first 8,000 MNIST test images, tiled and shifted) is
   trained on for one epoch with ``--memory-budget 1G`` (streamed by DataLoader workers), and
   its first 500,000 rows in memory (the fast path): the classic VAE, batch 128, seed 1, both.
   Figures: samples/s of each (vaekit's own per-epoch figure) and the peak memory of the
   whole process tree (PSS summed over the main process and its workers).
2. A table of 10,000,000 rows x 20 float32 features in Parquet (row groups of 250,000) is
   scored by a detector fitted on 50,000 rows: rows/s and peak memory, output as Parquet
   and as CSV.

The files are made in a temporary folder (``--tmp``, default the system's) and deleted after;
about 7 GB of free disk are needed.

    python bench/streaming.py [--gigabytes 6] [--rows 10000000] [--tmp DIR]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _shared import ROOT, measure, mnist_split

GIB = 1 << 30


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "vaekit", *map(str, args)]


def make_big_npy(path: Path, images: np.ndarray, gigabytes: float) -> int:
    """Tiles of the images, each tile shifted by a few pixels, written a tile at a time."""
    rows = math.ceil(gigabytes * 1e9 / images[0].size)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, *images.shape[1:]))
    for i, start in enumerate(range(0, rows, len(images))):
        tile = np.roll(images, shift=(i % 5 - 2, i // 5 % 5 - 2), axis=(1, 2))
        out[start:start + len(images)] = tile[:rows - start]
    out.flush()
    del out
    return rows


def drop_page_cache() -> bool:
    """So the streamed epoch reads from the disk, not from memory (needs root; best effort)."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def train(data: Path, out: Path, *extra) -> dict:
    result = measure(cli("train", "--data", data, "--epochs", 1, "--val-fraction", 0.01, "--seed", 1, "--out", out,
                         "--quiet", "--no-report", *extra), cwd=ROOT)
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    config = json.loads((out / "config.json").read_text())["data"]
    return {**result, "samples_per_s": metrics["samples_per_s"], "storage": config["storage_reason"]}


def make_table(path: Path, rows: int, features: int = 20, group: int = 250_000) -> None:
    """Rows near a 5-dimensional subspace, written a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, features)).astype(np.float32)
    names = [f"f{i}" for i in range(features)]
    with pq.ParquetWriter(path, pa.schema([(n, pa.float32()) for n in names])) as writer:
        for start in range(0, rows, group):
            n = min(group, rows - start)
            x = rng.standard_normal((n, 5), dtype=np.float32) @ w + 0.1 * rng.standard_normal((n, features),
                                                                                               dtype=np.float32)
            writer.write_table(pa.table({name: x[:, i] for i, name in enumerate(names)}))


def gb(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gigabytes", type=float, default=6.0, help="size of the streamed .npy (default 6)")
    p.add_argument("--rows", type=int, default=10_000_000, help="rows of the scored Parquet table")
    p.add_argument("--tmp", help="folder for the temporary files (default: the system's)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir=a.tmp) as tmp:
        tmp = Path(tmp)
        train_file, _ = mnist_split(tmp)
        images = np.load(train_file)
        t0 = time.perf_counter()
        big = tmp / "big.npy"
        rows = make_big_npy(big, images, a.gigabytes)
        size = big.stat().st_size
        print(f"1. training: {rows:,} MNIST-sized rows in {size / 1e9:.2f} GB ({gb(size)}), "
              f"written in {time.perf_counter() - t0:.0f} s; the classic VAE, batch 128, one epoch each")
        small = tmp / "first-500k.npy"
        np.save(small, np.load(big, mmap_mode="r")[:500_000])
        memory = train(small, tmp / "memory")
        cold = drop_page_cache()
        streamed = train(big, tmp / "stream", "--memory-budget", "1G")
        for name, r in (("in memory (500,000 rows)", memory), ("streamed (--memory-budget 1G)", streamed)):
            print(f"   {name:32} {r['samples_per_s']:9,.0f} samples/s   peak memory {gb(r['peak_tree'])} "
                  f"(main process RSS {gb(r['peak_main'])}); {r['storage']}")
        ratio = streamed["samples_per_s"] / memory["samples_per_s"]
        print(f"   streamed/in-memory speed: {ratio:.0%} (target at least 70%); peak memory of the streamed run "
              f"{'below' if streamed['peak_tree'] < 1.5 * GIB else 'ABOVE'} 1.5 GiB"
              + ("" if cold else "; the page cache could not be dropped, so the file was read from memory"))
        big.unlink()

        print(f"2. scoring {a.rows:,} rows x 20 float32 features from Parquet (row groups of 250,000)")
        t0 = time.perf_counter()
        table = tmp / "table.parquet"
        make_table(table, a.rows)
        fit_rows = tmp / "fit.parquet"
        make_table(fit_rows, 50_000)
        print(f"   table written in {time.perf_counter() - t0:.0f} s ({table.stat().st_size / 1e9:.2f} GB on disk, "
              f"{gb(a.rows * 20 * 4)} as float32)")
        subprocess.run(cli("detect", "fit", "--data", fit_rows, "--out", tmp / "det", "--quiet"), check=True,
                       cwd=ROOT, capture_output=True)
        for suffix in (".parquet", ".csv"):
            out = tmp / f"scores{suffix}"
            r = measure(cli("detect", "score", tmp / "det", "--data", table, "--out", out), cwd=ROOT)
            print(f"   to {suffix:8} {a.rows / r['seconds']:9,.0f} rows/s ({r['seconds']:.0f} s, start-up included)   "
                  f"peak memory {gb(r['peak_tree'])}")
            out.unlink()


if __name__ == "__main__":
    main()
