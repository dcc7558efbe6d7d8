"""vaekit serve: every endpoint through FastAPI's test client, every class of bad request as a
4xx JSON error, micro-batching, and a real uvicorn server on loopback."""
from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

import vaekit  # noqa: E402
from helpers import TINY, free_port, make_blobs, png_bytes  # noqa: E402
from vaekit.cli import main  # noqa: E402
from vaekit.serve import Batcher, ServeError, create_app  # noqa: E402


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    x, y = make_blobs()
    np.savez(tmp / "blobs.npz", X=x, y=y)
    vaekit.train(str(tmp / "blobs.npz"), out=tmp / "vae", **TINY)
    vaekit.train(str(tmp / "blobs.npz"), out=tmp / "cvae", **{**TINY, "model": "cvae"})
    rng = np.random.default_rng(0)
    table = rng.normal(size=(300, 4)).astype(np.float32)
    det = vaekit.AnomalyDetector(epochs=5, random_state=0).fit(table)
    det.save(tmp / "det")
    return {"tmp": tmp, "images": x.astype(np.float32) / 255, "labels": y, "table": table}


@pytest.fixture(scope="module")
def vae(folders):
    return TestClient(create_app(folders["tmp"] / "vae"))


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    return body["error"]


def test_a_run_answers_every_endpoint_as_the_python_api_does(folders, vae):
    run, x = vaekit.load(folders["tmp"] / "vae"), folders["images"][:5]
    assert vae.get("/health").json() == {"status": "ok"}
    info = vae.get("/info").json()
    assert info["kind"] == "run" and info["latent_dim"] == 4 and info["input_shape"] == [1, 8, 8]
    codes = vae.post("/encode", json={"inputs": x.tolist()}).json()["codes"]
    np.testing.assert_allclose(codes, run.encode(x), atol=1e-5)
    outputs = vae.post("/reconstruct", json={"inputs": x.tolist()}).json()["outputs"]
    np.testing.assert_allclose(outputs, run.reconstruct(x), atol=1e-5)
    decoded = vae.post("/decode", json={"codes": codes}).json()["outputs"]
    np.testing.assert_allclose(decoded, run.decode(np.asarray(codes)), atol=1e-5)
    samples = vae.get("/sample", params={"n": 6, "seed": 3}).json()["samples"]
    np.testing.assert_allclose(samples, run.sample(6, seed=3), atol=1e-5)
    assert info["priors"] == ["normal", "gmm"] and info["prior"] == "gmm"  # the run's own is the default
    for prior in ("normal", "gmm"):
        samples = vae.get("/sample", params={"n": 6, "seed": 3, "prior": prior}).json()["samples"]
        np.testing.assert_allclose(samples, run.sample(6, seed=3, prior=prior), atol=1e-5)
    path = vae.post("/interpolate", json={"inputs": x[:2].tolist(), "steps": 5, "method": "slerp"}).json()
    assert np.asarray(path["outputs"]).shape == (5, 8, 8)
    # uploaded PNGs are read like the arrays they hold
    files = [("file", (f"{i}.png", png_bytes(x[i]), "image/png")) for i in range(3)]
    np.testing.assert_allclose(vae.post("/encode", files=files).json()["codes"], codes[:3], atol=1e-2)
    picture = vae.get("/sample", params={"n": 4, "format": "png"})
    assert picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size[0] > 8  # a grid of enlarged samples
    assert vae.get("/openapi.json").json()["paths"].keys() >= {"/encode", "/decode", "/sample", "/interpolate"}


def test_a_conditional_run_takes_labels(folders):
    client = TestClient(create_app(folders["tmp"] / "cvae"))
    x, y = folders["images"][:4], folders["labels"][:4]
    codes = client.post("/encode", json={"inputs": x.tolist(), "labels": y.tolist()}).json()["codes"]
    assert np.asarray(codes).shape == (4, 4)
    assert np.asarray(client.get("/sample", params={"n": 3, "label": 2}).json()["samples"]).shape == (3, 8, 8)
    assert "needs a label for each input" in error_of(client.post("/encode", json={"inputs": x.tolist()}), 422)
    assert "not a class" in error_of(client.get("/sample", params={"label": 7}), 422)
    # a grid of one class fills rows of 8; of all classes, a row per round of the 3 classes
    for label, columns in ((2, 8), (None, 3)):
        picture = client.get("/sample", params={"n": 16, "format": "png", **({"label": label} if label else {})})
        assert Image.open(io.BytesIO(picture.content)).size[0] == 2 + columns * (32 + 2)


def test_every_bad_request_is_a_clear_4xx_and_the_server_lives_on(folders, vae):
    x = folders["images"][:2].tolist()
    assert "shape [8, 8]" in error_of(vae.post("/encode", json={"inputs": [[1.0, 2.0]]}), 422)
    nan = '{"inputs": [' + ",".join(["[" + ",".join(["NaN"] * 8) + "]"] * 8) + "]}"
    assert "NaN" in error_of(vae.post("/encode", content=nan, headers={"content-type": "application/json"}), 422)
    assert "[0, 1]" in error_of(vae.post("/encode", json={"inputs": (np.asarray(x) * 255).tolist()}), 422)
    assert "list of rows" in error_of(vae.post("/encode", json={"inputs": [["a"] * 8] * 8}), 422)
    assert "must be JSON" in error_of(vae.post("/encode", content=b"\xff\x00 not json"), 422)
    files = [("file", ("notes.png", b"this is no image", "image/png"))]
    assert "not a PNG or JPEG" in error_of(vae.post("/encode", files=files), 415)
    files = [("file", ("big.png", png_bytes(np.zeros((9, 9))), "image/png"))]
    assert "takes 8x8" in error_of(vae.post("/encode", files=files), 422)
    huge = b'{"inputs": [' + b"0," * (9 << 20) + b"0]}"
    assert "over 16 MB" in error_of(vae.post("/encode", content=huge, headers={"content-type": "application/json"}),
                                    413)
    assert "at most 4096" in error_of(vae.post("/encode", json={"inputs": np.zeros((5000, 8, 8)).tolist()}), 413)
    assert "label needs a conditional model" in error_of(vae.get("/sample", params={"label": 1}), 422)
    assert "n must be 1 to" in error_of(vae.get("/sample", params={"n": 0}), 422)
    assert "no fitted flow prior" in error_of(vae.get("/sample", params={"prior": "flow"}), 422)
    assert "unknown prior 'magic'" in error_of(vae.get("/sample", params={"prior": "magic"}), 422)
    assert "codes must be rows of 4" in error_of(vae.post("/decode", json={"codes": [[1, 2]]}), 422)
    assert "overflow" in error_of(vae.post("/decode", json={"codes": [[1e300] * 4]}), 422)  # not a 500
    assert "exactly 2 inputs" in error_of(vae.post("/interpolate", json={"inputs": x[:1]}), 422)
    assert "steps" in error_of(vae.post("/interpolate", json={"inputs": x, "steps": 1}), 422)
    assert "/score is for an anomaly detector" in error_of(vae.post("/score", json={"inputs": x}), 404)
    assert "format 'gif'" in error_of(vae.post("/reconstruct?format=gif", json={"inputs": x}), 422)
    assert vae.get("/health").json() == {"status": "ok"}  # still serving


DIGITS_400 = "1" + "0" * 400  # a whole number no float holds
DEEP = "[" * 1100 + "]" * 1100  # nested past Python's recursion limit


@pytest.mark.parametrize("path, body, status, message", [
    ("/encode", '{"inputs": [[' + DIGITS_400 + ']]}', 422, "number too large"),
    ("/interpolate", '{"inputs": [[' + DIGITS_400 + ']]}', 422, "number too large"),
    ("/decode", '{"codes": [[' + DIGITS_400 + ', 0, 0, 0]]}', 422, "valid number"),
    ("/encode", '{"inputs": ' + DEEP + '}', 422, "nested too deeply"),
    ("/interpolate", '{"inputs": ' + DEEP + '}', 400, "parsing the body"),
    ("/decode", '{"codes": ' + DEEP + '}', 400, "parsing the body"),
])
def test_absurd_json_is_a_4xx_not_a_server_error(vae, path, body, status, message):
    assert message in error_of(vae.post(path, content=body, headers={"content-type": "application/json"}), status)
    assert vae.get("/health").json() == {"status": "ok"}


def test_a_seed_beyond_64_bits_is_a_4xx(vae):
    assert "seed must be a whole number from 0 to 2**63 - 1" in error_of(
        vae.get("/sample", params={"seed": 2 ** 64}), 422)


def test_a_detector_scores_json_rows_and_uploaded_csv(folders):
    client = TestClient(create_app(folders["tmp"] / "det", api_key="s3cret"))
    det, rows = vaekit.AnomalyDetector.load(folders["tmp"] / "det"), folders["table"][:20]
    assert "API key" in error_of(client.post("/score", json={"inputs": rows.tolist()}), 401)
    assert client.get("/health").status_code == 200  # the health check needs no key
    key = {"X-API-Key": "s3cret"}
    got = client.post("/score", json={"inputs": rows.tolist()}, headers=key).json()
    np.testing.assert_allclose(got["scores"], det.decision_function(rows), rtol=1e-5)
    assert got["labels"] == det.predict(rows).tolist() and got["threshold"] == det.threshold_
    csv = "a,b,c,d\n" + "\n".join(",".join(f"{v:.6f}" for v in r) for r in rows) + "\n"
    up = client.post("/score", files=[("file", ("new.csv", csv.encode(), "text/csv"))], headers=key).json()
    np.testing.assert_allclose(up["scores"], got["scores"], rtol=1e-4)
    assert "table of 4 features" in error_of(client.post("/score", json={"inputs": [[1, 2]]}, headers=key), 422)
    files = [("file", ("x.png", png_bytes(np.zeros((4, 4))), "image/png"))]
    assert "not images" in error_of(client.post("/score", files=files, headers=key), 415)
    assert "/encode is for a trained run" in error_of(client.post("/encode", json={"inputs": [[0] * 4]},
                                                                  headers=key), 404)
    assert client.get("/info", headers=key).json()["kind"] == "detector"


def test_a_table_float32_cannot_carry_is_scored_and_reconstructed_as_in_python(tmp_path):
    x = 1e12 + 1e3 * np.random.default_rng(0).normal(size=(200, 3))
    det = vaekit.AnomalyDetector(epochs=5, random_state=0).fit(x)
    det.save(tmp_path / "det")
    got = TestClient(create_app(tmp_path / "det")).post("/score", json={"inputs": x[:20].tolist()}).json()
    np.testing.assert_allclose(got["scores"], det.decision_function(x[:20]), rtol=1e-5)
    assert len(set(got["scores"])) == 20  # in float32 every row was the same 1e12
    run = vaekit.train(x, out=tmp_path / "run", **TINY)
    out = TestClient(create_app(tmp_path / "run")).post("/reconstruct", json={"inputs": x[:5].tolist()}).json()
    np.testing.assert_allclose(out["outputs"], run.reconstruct(x[:5]), rtol=1e-12)


def test_concurrent_requests_share_forward_passes_and_a_full_queue_answers_503():
    calls = []

    def double(rows, labels):
        calls.append(len(rows))
        time.sleep(0.02)
        return rows * 2

    async def gather(batcher, n):
        return await asyncio.gather(*(batcher(np.full((1, 3), i, np.float32)) for i in range(n)),
                                    return_exceptions=True)

    batcher = Batcher(double, max_batch=64, max_wait=0.05, queue_size=64)
    results = asyncio.run(gather(batcher, 20))
    assert [float(r[0, 0]) for r in results] == [2.0 * i for i in range(20)]  # each its own rows back
    assert batcher.requests == 20 and batcher.batches == len(calls) < 5 and sum(calls) == 20
    small = Batcher(double, max_batch=1, max_wait=0.0, queue_size=2)
    results = asyncio.run(gather(small, 10))
    refused = [r for r in results if isinstance(r, ServeError)]
    assert refused and all(r.status == 503 and "busy" in str(r) for r in refused)
    assert all(isinstance(r, np.ndarray) for r in results if not isinstance(r, ServeError))


@pytest.mark.slow
def test_a_real_server_on_loopback_batches_concurrent_clients(folders, capsys):
    import httpx

    run = folders["tmp"] / "vae"
    assert main(["serve", str(run), "--host", "0.0.0.0"]) == 2  # beyond this machine only with a key
    assert "--api-key" in capsys.readouterr().err
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vaekit", "serve", str(run), "--port", str(port),
                               "--max-wait-ms", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        x = folders["images"][:1].tolist()

        async def clients(n):
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                return await asyncio.gather(*(client.post("/encode", json={"inputs": x}) for _ in range(n)))

        answers = asyncio.run(clients(16))
        assert [a.status_code for a in answers] == [200] * 16
        stats = httpx.get(f"{url}/info").json()["batching"]["encode"]
        assert stats["requests"] == 16 and stats["batches"] < 16
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"at http://127.0.0.1:{port}" in out


@pytest.mark.parametrize("argv, says", [
    (["--port", "70000"], "--port must be 1 to 65535, got 70000"),
    (["--max-wait-ms", "inf"], "--max-wait-ms must be a number of milliseconds from 0 to 1000, got inf"),
    (["--max-wait-ms", "nan"], "got nan"),
    (["--max-wait-ms", "-1"], "got -1.0"),
    (["--request-timeout", "0"], "--request-timeout must be a number of seconds above 0"),
    (["--port", "{busy}"], "Address already in use); choose another --port, or stop what serves there"),
])
def test_serve_checks_every_option_before_it_says_where_it_listens(folders, argv, says):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        argv = [a.replace("{busy}", str(taken.getsockname()[1])) for a in argv]
        r = subprocess.run([sys.executable, "-m", "vaekit", "serve", str(folders["tmp"] / "vae"), *argv],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and says in r.stderr, r


def _raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """What a server answers ``data`` sent as it is over a fresh connection, read until it closes."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:  # the server answered and closed before all was sent (a body past the cap)
            pass
        out = b""
        try:
            while chunk := s.recv(1 << 16):
                out += chunk
        except ConnectionResetError:
            pass
        return out


@pytest.mark.slow
def test_a_real_server_caps_any_body_cuts_off_stalled_clients_and_stops_on_sigterm(folders):
    import signal
    import socket

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vaekit", "serve", str(folders["tmp"] / "vae"), "--port",
                               str(port), "--request-timeout", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert "at http://127.0.0.1" in server.stdout.readline()
        health = b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        for _ in range(100):
            try:
                if b'"ok"' in _raw(port, health):
                    break
            except OSError:
                time.sleep(0.1)
        # A chunked body (no Content-Length) past 16 MB is refused as it arrives.
        chunk = b"0," * (1 << 19)
        answer = _raw(port, b"POST /encode HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n"
                            + b"%x\r\n" % (len(chunk) + 12) + b'{"inputs": [' + chunk + b"\r\n"
                            + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 17, timeout=20)
        assert answer.startswith(b"HTTP/1.1 413") and b"over 16 MB" in answer
        # Clients that stall halfway through their headers or their body are cut off; others are served.
        stalled = []
        for part in (b"POST /encode HTTP/1.1\r\nHost: t\r\nContent-Le",
                     b"POST /encode HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"inputs\": [["):
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", port), timeout=15)
                s.sendall(part)
                stalled.append(s)
        assert b'{"status":"ok"}' in _raw(port, health)
        start = time.monotonic()
        for s in stalled:
            with s:
                try:
                    left = s.recv(100)  # a server that never cuts it off: TimeoutError after 15 s
                except ConnectionResetError:
                    left = b""
                assert left == b""      # closed by the server, with nothing said
        assert time.monotonic() - start < 10
        # SIGTERM stops it within its grace period.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_detector_checks_column_names_and_ranks_a_row_whose_score_overflows_first(folders, tmp_path):
    from vaekit.data import load_dataset

    rows = folders["table"]
    body = "\n".join(",".join(f"{v:.6f}" for v in r) for r in rows[:5]) + "\n"
    (tmp_path / "named.csv").write_text("a,b,c,d\n" + body)
    vaekit.AnomalyDetector(epochs=3, random_state=0).fit(load_dataset(str(tmp_path / "named.csv"))).save(
        tmp_path / "det")
    client = TestClient(create_app(tmp_path / "det"))

    def upload(*files):
        return client.post("/score", files=[("file", (name, text.encode(), "text/csv")) for name, text in files])

    assert upload(("same.csv", "a,b,c,d\n" + body)).status_code == 200
    assert upload(("no-header.txt", body)).status_code == 200  # x0..x3 stand in for the names; any file name
    assert "differ from the model's" in error_of(upload(("other.csv", "xa,xb,xc,xd\n" + body)), 422)
    assert "as one CSV file" in error_of(upload(("1.csv", body), ("2.csv", body)), 422)
    far = client.post("/score", json={"inputs": [[1e20, 0, 0, 0], *rows[:3].tolist()]})
    assert far.status_code == 200, far.text
    scores = far.json()["scores"]
    assert np.isfinite(scores).all() and np.argmax(scores) == 0 and far.json()["labels"][0] == 1
