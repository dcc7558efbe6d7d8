"""What the tests share besides fixtures: tiny seeded data, tiny training settings, and the
command line run as a user runs it. Imported by the test modules (``from helpers import
...``); conftest.py holds only the fixtures."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np

# Small and quick: a few epochs of a narrow net on 240 8x8 images; the report (tested on
# its own in test_report.py) is left out to keep the suite fast.
TINY = dict(hidden_dims=(32,), latent_dim=4, epochs=3, batch_size=32, progress=False, report=False)
TINY_ARGS = ["--hidden-dims", "32", "--latent-dim", "4", "--epochs", "3", "--batch-size", "32", "--quiet",
             "--no-report"]  # the same on the command line


def make_blobs(n: int = 240, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale (n, size, size) uint8 images of three shapes (bar, column, square) with noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, size, size), np.float32)
    h = size // 2
    for i, label in enumerate(y):
        if label == 0:
            x[i, h - 1:h + 1, :] = 1
        elif label == 1:
            x[i, :, h - 1:h + 1] = 1
        else:
            x[i, 2:size - 2, 2:size - 2] = 1
    x = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    return (x * 255).astype(np.uint8), y


def vaekit_cli(*args, cwd=None, **env) -> subprocess.CompletedProcess:
    """Run the real console entry point in a fresh interpreter (``env``: extra variables)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **env}
    return subprocess.run([sys.executable, "-m", "vaekit", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(app):
    """``app`` served by a real uvicorn server on loopback (in a thread), yielding its address."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    listener = socket.socket()  # bound here, so no other server can take the port meanwhile
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started and httpx.get(f"{url}/health").status_code == 200
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def copy_run(folder, to):
    """A test's own copy of a run trained once (conftest's trained_once), to change as it likes."""
    import shutil

    shutil.copytree(folder, to)
    return to


def png_bytes(image: np.ndarray) -> bytes:
    """A gray image with values in [0, 1] as the bytes of a PNG file."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
