"""Denoising: noise specs, training on corrupted inputs, and the denoise command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vaekit
from helpers import TINY, make_blobs
from vaekit import VaekitError
from vaekit.cli import main
from vaekit.evaluation import psnr
from vaekit.noise import parse_noise


@pytest.mark.parametrize("spec", ["gaussian:0.5", "salt-pepper:0.2", "mask:0.3"])
def test_noise_is_seeded_clipped_and_of_the_asked_strength(spec):
    noise = parse_noise(spec)
    x = torch.full((200, 1, 8, 8), 0.5)
    a = noise.apply(x, torch.Generator().manual_seed(0), clip=True)
    b = noise.apply(x, torch.Generator().manual_seed(0), clip=True)
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    changed = (a != x).float().mean().item()
    if noise.kind == "gaussian":
        assert changed > 0.99
    else:
        assert changed == pytest.approx(noise.amount, abs=0.03)


@pytest.mark.parametrize("spec", ["gaussian", "blur:0.2", "mask:1.5", "gaussian:-1"])
def test_bad_noise_specs(spec, tmp_path, blobs_npz):
    with pytest.raises(VaekitError, match="noise must look like"):
        vaekit.train(str(blobs_npz), out=tmp_path / "r", noise=spec, **TINY)
    assert not (tmp_path / "r").exists()


def noisy_pair(seed=1):
    x, _ = make_blobs(n=240, seed=seed)
    clean = x.astype(np.float32) / 255
    noisy = np.clip(clean + 0.4 * np.random.default_rng(seed).normal(size=clean.shape), 0, 1).astype(np.float32)
    return clean, noisy


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_a_denoiser_cleans_unseen_noisy_images(tmp_path, blobs_npz, arch):
    run = vaekit.train(str(blobs_npz), out=tmp_path / arch, model="ae", arch=arch, noise="gaussian:0.4",
                       **{**TINY, "epochs": 25, "lr": 3e-3, "hidden_dims": (32,) if arch == "mlp" else (8, 16)})
    clean, noisy = noisy_pair()
    assert psnr(clean, run.denoise(noisy)) > psnr(clean, noisy) + 4


def test_resume_keeps_the_noise_stream(tmp_path, blobs_npz):
    opts = {**TINY, "noise": "salt-pepper:0.2", "patience": None}
    whole = vaekit.train(str(blobs_npz), out=tmp_path / "whole", **{**opts, "epochs": 4})
    vaekit.train(str(blobs_npz), out=tmp_path / "part", **{**opts, "epochs": 2})
    resumed = vaekit.train(resume=tmp_path / "part", epochs=4, progress=False, report=False)
    assert [m["train_loss"] for m in resumed.metrics()] == [m["train_loss"] for m in whole.metrics()]


def test_denoise_command_reports_the_gain(tmp_path, blobs_npz, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(blobs_npz), "--out", str(run), "--model", "ae", "--noise", "gaussian:0.4",
                 "--hidden-dims", "32", "--latent-dim", "4", "--epochs", "25", "--lr", "3e-3",
                 "--batch-size", "32", "--quiet", "--no-report"]) == 0
    clean, noisy = noisy_pair()
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "noisy.npy", noisy)
    capsys.readouterr()
    assert main(["denoise", str(run), "--data", str(tmp_path / "noisy.npy"), "--clean", str(tmp_path / "clean.npy"),
                 "--out", str(tmp_path / "out.npy"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["psnr_denoised"] > metrics["psnr_noisy"] + 4
    assert metrics["ssim_denoised"] > metrics["ssim_noisy"]
    assert np.load(tmp_path / "out.npy").shape == (240, 8, 8)
    np.save(tmp_path / "short.npy", clean[:10])
    assert main(["denoise", str(run), "--data", str(tmp_path / "noisy.npy"), "--clean", str(tmp_path / "short.npy"),
                 "--out", str(tmp_path / "o.npy")]) == 2
    assert "give the same rows" in capsys.readouterr().err
    assert not (tmp_path / "o.npy").exists()


def test_a_denoising_run_defaults_to_the_denoising_autoencoder(tmp_path, blobs_npz):
    quick = dict(hidden_dims=(16,), epochs=1, progress=False, report=False)

    def trained(name, **options):
        return vaekit.train(str(blobs_npz), out=tmp_path / name, noise="gaussian:0.4", **quick, **options).config.model

    default = trained("default")
    assert (default.model, default.latent_dim) == ("ae", 64)
    vae = trained("vae", model="vae")
    assert (vae.model, vae.latent_dim) == ("vae", 20)
    assert trained("narrow", latent_dim=8).latent_dim == 8
    plain = vaekit.train(str(blobs_npz), out=tmp_path / "plain", **quick).config.model
    assert (plain.model, plain.latent_dim) == ("vae", 20)  # without noise, the classic VAE
