"""Serving throughput: `vaekit serve` under 64 concurrent clients, micro-batching on and off.

- `/score` of a table anomaly detector (AnomalyDetector, 20 epochs on 5,000 seeded random
  rows x 20 features), and `/encode` of a small MNIST image VAE (2 epochs on the first
  8,000 MNIST test images; ../shared/data/mnist, or VAEKIT_SHARED).
- Each served twice, one server process at a time on loopback (`python -m vaekit serve
  FOLDER --device cpu`): micro-batching on (the defaults, --max-batch 256 --max-wait-ms 5)
  and off (--max-batch 1 --max-wait-ms 0). 64 httpx.AsyncClient tasks send one row per
  request (JSON bodies prepared beforehand), each over its own keep-alive connection: a
  warm-up that opens them, then a fixed number of requests.
  Requests per second, p50/p99 latency as each client sees it, and rows per forward pass
  (the server's /info batching counts over the measured requests).
- The ceiling: the same model exported to ONNX (scorer.onnx, encoder.onnx) and run
  in-process by ONNX Runtime on the same rows, 256 rows per call, no HTTP (rows per second).
- What HTTP alone allows: GET /health (no model, no batching) from the same clients and server.
- CPU milliseconds per request of the server process and of this (the client) process: where
  both share a small machine's cores, the client's own work (httpx, JSON) is part of what is
  measured, and these columns say which side was the limit.

    python bench/serve.py [--requests 2000] [--warmup 200] [--clients 64]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _shared import MNIST, mnist_split

ROWS, FEATURES = 5000, 20
ONNX_BATCH = 256
CONFIGS = (("on", ["--max-batch", "256", "--max-wait-ms", "5"]), ("off", ["--max-batch", "1", "--max-wait-ms", "0"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m vaekit serve FOLDER` in a subprocess, up once /health answers."""

    def __init__(self, folder: Path, options: list[str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "vaekit", "serve", str(folder), "--port",
                                          str(self.port), "--device", "cpu", *options],
                                         stdout=out, stderr=subprocess.STDOUT)

    def __enter__(self) -> Server:
        import httpx

        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"vaekit serve exited ({self.proc.returncode}):\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1, trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit(f"vaekit serve did not answer /health within 60 s:\n{self.log.read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def drive(clients: list, url: str, bodies: list[bytes] | None, total: int) -> tuple[float, np.ndarray]:
    """``total`` requests, one task per client (POSTs of ``bodies`` in turn, or GETs where None);
    wall seconds and each request's latency."""
    latencies: list[float] = []
    left = iter(range(total))
    headers = {"content-type": "application/json"}

    async def client(http) -> None:
        for i in left:  # the tasks share one counter: each takes the next request when its last is answered
            t0 = time.perf_counter()
            if bodies is None:
                r = await http.get(url)
            else:
                r = await http.post(url, content=bodies[i % len(bodies)], headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:300]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(client(http) for http in clients))
    return time.perf_counter() - t0, np.asarray(latencies)


async def measure(server: Server, endpoint: str, bodies: list[bytes] | None, a) -> dict:
    """One line of the table: ``a.requests`` requests to ``endpoint`` after a warm-up that opens every
    client's connection (keep-alive: none is opened while measuring).

    Each task has its own AsyncClient, one connection: one AsyncClient shared by 64 tasks spends
    most of its CPU in its connection pool (encode/httpx#3215), and then the client, not the
    server, is what gets measured. Plain HTTP on loopback: verify=False spares each client the
    loading of the CA bundle (tens of ms each), which no request uses.
    """
    import httpx
    import psutil

    url = f"{server.url}/{endpoint}"
    clients = [httpx.AsyncClient(timeout=60, trust_env=False, verify=False) for _ in range(a.clients)]

    async def batching() -> tuple[int, int]:
        if bodies is None:
            return 0, 0
        counts = (await clients[0].get(f"{server.url}/info")).json()["batching"][endpoint]
        return counts["requests"], counts["batches"]

    try:
        await drive(clients, url, bodies, max(a.warmup, a.clients))
        requests0, batches0 = await batching()
        proc = psutil.Process(server.proc.pid)
        server0, client0 = sum(proc.cpu_times()[:2]), time.process_time()
        seconds, latencies = await drive(clients, url, bodies, a.requests)
        server1, client1 = sum(proc.cpu_times()[:2]), time.process_time()
        requests1, batches1 = await batching()
    finally:
        for http in clients:
            await http.aclose()
    per_pass = f"{(requests1 - requests0) / (batches1 - batches0):.1f}" if bodies is not None else "-"
    return {"rate": a.requests / seconds, "p50": np.percentile(latencies, 50) * 1000,
            "p99": np.percentile(latencies, 99) * 1000, "per_pass": per_pass,
            "server_cpu": (server1 - server0) / a.requests * 1000,
            "client_cpu": (client1 - client0) / a.requests * 1000}


def onnx_rate(path: Path, rows: np.ndarray, repeats: int = 5) -> float:
    """Rows per second of ONNX Runtime in this process, ``ONNX_BATCH`` rows per call (best of ``repeats``)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    chunks = [rows[i:i + ONNX_BATCH] for i in range(0, len(rows), ONNX_BATCH)]
    session.run(None, {"x": chunks[0]})
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for chunk in chunks:
            session.run(None, {"x": chunk})
        best = min(best, time.perf_counter() - t0)
    return len(rows) / best


def main() -> None:
    import vaekit
    from vaekit.export import export_onnx

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000, help="measured requests per configuration")
    p.add_argument("--warmup", type=int, default=200, help="requests sent first, not measured")
    p.add_argument("--clients", type=int, default=64, help="concurrent client tasks")
    a = p.parse_args()
    if not MNIST.exists():
        sys.exit(f"benchmark data not found at {MNIST}; set VAEKIT_SHARED to the shared folder")
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(FEATURES, FEATURES))
    table = (rng.normal(size=(ROWS + 2000, FEATURES)) @ mix).astype(np.float32)
    results, ceilings, floor = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        det = vaekit.AnomalyDetector(epochs=20, random_state=0).fit(table[:ROWS])
        det.save(tmp / "detector")
        train_file, test_file = mnist_split(tmp / "mnist")
        vaekit.train(str(train_file), out=tmp / "vae", epochs=2, progress=False, report=False)
        scorer = next(f for f in export_onnx(tmp / "detector", tmp / "detector-onnx") if f.name == "scorer.onnx")
        encoder = next(f for f in export_onnx(tmp / "vae", tmp / "vae-onnx") if f.name == "encoder.onnx")
        prepared = time.perf_counter() - t0

        rows = table[ROWS:]
        images = np.load(test_file).astype(np.float32) / 255  # the last 2,000 test images, never trained on
        models = (("/score", tmp / "detector", "score", np.round(rows, 5), scorer, rows),
                  ("/encode", tmp / "vae", "encode", np.round(images, 4), encoder, images[:, None]))
        for label, folder, endpoint, sent, onnx_file, onnx_rows in models:
            bodies = [json.dumps({"inputs": [r]}).encode() for r in sent.tolist()]
            for batching, options in CONFIGS:
                with Server(folder, options, tmp / "server.log") as server:
                    results.append((label, batching, asyncio.run(measure(server, endpoint, bodies, a))))
                    if not floor:  # what HTTP alone allows: the same clients and server, no model
                        floor = asyncio.run(measure(server, "health", None, a))
            ceilings.append((label, folder.name, onnx_file.name, onnx_rate(onnx_file, onnx_rows)))

    print(f"vaekit serve on loopback: {a.clients} concurrent clients, one row per request, {a.requests:,} requests "
          f"per line after {a.warmup:,} of warm-up; {os.cpu_count()} CPUs, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')} (training and export: {prepared:.0f} s)")
    print(f"{'endpoint':12} {'batching':9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'rows/pass':>11}"
          f"{'server CPU ms/req':>19}{'client CPU ms/req':>19}")
    for label, batching, r in [*results, ("GET /health", "-", floor)]:
        print(f"{label:12} {batching:9}{r['rate']:8,.0f}{r['p50']:9.1f}{r['p99']:9.1f}{r['per_pass']:>11}"
              f"{r['server_cpu']:19.2f}{r['client_cpu']:19.2f}")
    for label, name, onnx_name, rate in ceilings:
        print(f"ceiling for {label}: {onnx_name} ({name}) in-process with ONNX Runtime, {ONNX_BATCH} rows per call: "
              f"{rate:,.0f} rows/s")


if __name__ == "__main__":
    main()
