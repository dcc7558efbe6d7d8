"""ONNX export: every file runs in ONNX Runtime and agrees with PyTorch."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import vaekit
from helpers import TINY
from vaekit import AnomalyDetector, VaekitError
from vaekit.cli import main
from vaekit.export import export_onnx

ort = pytest.importorskip("onnxruntime")


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow
@pytest.mark.parametrize("model, arch", [("vae", "mlp"), ("ae", "conv"), ("cvae", "mlp")])
def test_run_exports_match_pytorch(tmp_path, blobs_npz, blobs, model, arch):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "run", model=model, arch=arch,
                       **{**TINY, "hidden_dims": (32,) if arch == "mlp" else (4, 8)})
    encoder, decoder, *samplers = export_onnx(run.path)
    real = blobs[0][:37].astype(np.float32)[:, None] / 255      # (N, C, H, W) in [0, 1]
    random = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    labels = blobs[1][:37]
    for x, y in ((real, labels), (random, labels[:5])):
        feeds = {"x": x, **({"y": y.astype(np.int64)} if model == "cvae" else {})}
        outs = session(encoder).run(None, feeds)
        yt = torch.as_tensor(y) if model == "cvae" else None
        with torch.no_grad():
            code = run.model.encode(torch.from_numpy(x), yt)
            expected = [code.mean, code.stddev] if model != "ae" else [code.mean]  # an AE's code has no spread
        for got, want in zip(outs, expected):
            assert np.abs(got - want.numpy()).max() < 1e-4
        z = outs[0]
        decoded = session(decoder).run(None, {"z": z, **({"y": feeds["y"]} if model == "cvae" else {})})[0]
        with torch.no_grad():
            want = run.model.decode(torch.from_numpy(z), yt).mean
        assert np.abs(decoded - want.numpy()).max() < 1e-4
    # One sampler per prior the run has; the random numbers come in, so draws are reproducible.
    assert [p.name for p in samplers] == [f"sampler-{p}.onnx" for p in run.model.sampling_priors]
    assert "sampler-gmm.onnx" in [p.name for p in samplers] and ("sampler-normal.onnx" in
                                                                 [p.name for p in samplers]) == (model != "ae")
    rng = np.random.default_rng(1)
    noise, uniform = rng.normal(size=(40, 4)).astype(np.float32), rng.random(40).astype(np.float32)
    y = (np.arange(40) % 3).astype(np.int64)
    gmm = run.model.priors["gmm"]
    for path in samplers:
        prior = path.stem.split("-")[1]
        feeds = {"noise": noise, **({"uniform": uniform} if prior == "gmm" and model != "cvae" else {}),
                 **({"y": y} if model == "cvae" else {})}
        got = session(path).run(None, feeds)[0]
        z = torch.from_numpy(noise)
        if prior == "gmm":
            z = gmm.transform(z, torch.from_numpy(y) if model == "cvae" else gmm.pick(torch.from_numpy(uniform)))
        with torch.no_grad():
            want = run.model.decode_mean(z, torch.from_numpy(y) if model == "cvae" else None)
        assert got.shape == (40, 1, 8, 8) and np.abs(got - want.numpy()).max() < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "ae"])
def test_detector_scorer_matches_decision_function(tmp_path, capsys, model):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(300, 6)) * [1, 5, 10, 1, 1, 2] + 3).astype(np.float32)
    det = AnomalyDetector(model=model, epochs=20, random_state=0).fit(x[:250])
    det.save(tmp_path / "det")
    assert main(["export", str(tmp_path / "det"), "--out", str(tmp_path / "onnx")]) == 0
    assert {p.name for p in (tmp_path / "onnx").iterdir()} == {"encoder.onnx", "decoder.onnx", "scorer.onnx"}
    beyond_the_clip = np.array([[1e30, 3, 3, -1e9, 3, 3]], np.float32)  # soft-clipped in both
    for rows in (x[250:], rng.normal(size=(3, 6)).astype(np.float32) * 20, beyond_the_clip):  # real, far out
        scores = session(tmp_path / "onnx" / "scorer.onnx").run(None, {"x": rows})[0]
        expected = det.decision_function(rows)
        assert np.isfinite(expected).all() and np.allclose(scores, expected, rtol=1e-4, atol=1e-3)


def test_missing_exporter_is_a_clear_error(tmp_path, blobs_npz, monkeypatch):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "run", **TINY)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(VaekitError, match=r"pip install 'vaekit\[export\]'"):
        export_onnx(run.path)
