"""How good are generated digits? vaekit's models and priors against Pythae's, side by side.

Protocol (issue 21): the first 8,000 shared MNIST images train, the last 2,000 are held out.
Likelihood: the default VAE against the hierarchical VAE (``--model hvae``), the same epochs,
on the held-out digits' importance-weighted NLL.
Every model draws 2,000 samples, measured against the 2,000 held-out digits by
``vaekit.sample_quality`` (FID, precision and recall in the features of vaekit's digit
classifier). The noise floor is 2,000 training digits against the same held-out ones.

Pythae (``pip install pythae``, in the bench extra) is run as its documentation shows, with
its default networks for 28 x 28 inputs (MLPs) and its trainer: a VAE sampled from N(0, I)
and from its GaussianMixtureSampler (10 components, its default), and a RAE-L2 with the
mixture sampler. Training time is each model's own fit plus its prior's. vaekit trains
with ``time_budget`` three quarters of the Pythae VAE's training time, so that its whole
call (training, then fitting the mixture) takes no longer than Pythae's VAE.

VQ-VAEs: Pythae's with its MNIST benchmark networks and its PixelCNN sampler, ``--vqvae-epochs``
each, against ``vaekit train --model vqvae`` with its defaults (its autoregressive prior
included), each timed whole.

    python bench/generation.py [--pythae-epochs 20] [--samples 2000] [--grid README-samples.png]
                               [--parts samples,vqvae,nll]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _shared import mnist_split

LATENT = 16  # Pythae's code size (it has no default); vaekit keeps its own default, 20


def quality(held: np.ndarray, samples: np.ndarray) -> dict:
    from vaekit.sample_quality import sample_quality

    return sample_quality(held, np.clip(samples.reshape(len(samples), 28, 28), 0, 1))


def pythae_models(train: np.ndarray, epochs: int, n: int, folder: Path) -> dict:
    """Pythae's VAE (N(0, I) and mixture sampler) and RAE-L2 (mixture sampler): (seconds, samples)."""
    from pythae.models import RAE_L2, VAE, RAE_L2_Config, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.samplers import (
        GaussianMixtureSampler,
        GaussianMixtureSamplerConfig,
        NormalSampler,
    )
    from pythae.trainers import BaseTrainerConfig, CoupledOptimizerTrainerConfig

    x = torch.from_numpy(train[:, None].astype(np.float32) / 255)
    split = int(len(x) * 0.9)
    out = {}
    for name, model, trainer in (
            ("VAE", VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT)),
             BaseTrainerConfig(output_dir=str(folder), num_epochs=epochs, learning_rate=1e-3,
                               per_device_train_batch_size=64, no_cuda=True)),
            ("RAE-L2", RAE_L2(RAE_L2_Config(input_dim=(1, 28, 28), latent_dim=LATENT, embedding_weight=1e-2,
                                            reg_weight=1e-4)),
             CoupledOptimizerTrainerConfig(output_dir=str(folder), num_epochs=epochs, encoder_learning_rate=1e-3,
                                           decoder_learning_rate=1e-3, per_device_train_batch_size=64,
                                           decoder_optimizer_params={"weight_decay": 1e-4}, no_cuda=True))):
        t0 = time.perf_counter()
        TrainingPipeline(training_config=trainer, model=model)(train_data=x[:split], eval_data=x[split:])
        fit = time.perf_counter() - t0
        model.eval()
        if name == "VAE":
            torch.manual_seed(0)
            out[f"pythae {name} + N(0, I)"] = fit, NormalSampler(model).sample(num_samples=n).numpy()
        t0 = time.perf_counter()
        sampler = GaussianMixtureSampler(model, GaussianMixtureSamplerConfig(n_components=10))
        sampler.fit(x[:split])
        out[f"pythae {name} + GMM"] = fit + time.perf_counter() - t0, sampler.sample(num_samples=n).numpy()
    return out


def pythae_vqvae(train: np.ndarray, epochs: int, prior_epochs: int, n: int, folder: Path) -> dict:
    """Pythae's VQ-VAE with its MNIST benchmark networks (ResNet encoder and decoder, a 4 x 4 grid
    of 16-d vectors, 512 codebook entries: its defaults; with EMA codebook updates its sampler
    fails) and its PixelCNN sampler (its defaults: 10 layers, kernel 5) trained for
    ``prior_epochs``: (seconds, samples)."""
    from pythae.models import VQVAE, VQVAEConfig
    from pythae.models.nn.benchmarks.mnist import Decoder_ResNet_VQVAE_MNIST, Encoder_ResNet_VQVAE_MNIST
    from pythae.pipelines import TrainingPipeline
    from pythae.samplers import PixelCNNSampler, PixelCNNSamplerConfig
    from pythae.trainers import BaseTrainerConfig

    x = torch.from_numpy(train[:, None].astype(np.float32) / 255)
    split = int(len(x) * 0.9)
    torch.manual_seed(0)  # its networks' initial weights and the sampler's draws
    config = VQVAEConfig(input_dim=(1, 28, 28), latent_dim=16)
    model = VQVAE(config, encoder=Encoder_ResNet_VQVAE_MNIST(config), decoder=Decoder_ResNet_VQVAE_MNIST(config))
    t0 = time.perf_counter()
    TrainingPipeline(training_config=BaseTrainerConfig(output_dir=str(folder), num_epochs=epochs, learning_rate=1e-3,
                                                       per_device_train_batch_size=64, no_cuda=True),
                     model=model)(train_data=x[:split], eval_data=x[split:])
    model.eval()
    sampler = PixelCNNSampler(model, PixelCNNSamplerConfig())
    sampler.fit(x[:split], x[split:], training_config=BaseTrainerConfig(
        output_dir=str(folder), num_epochs=prior_epochs, learning_rate=1e-3, per_device_train_batch_size=64,
        no_cuda=True))
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        used = len(model({"data": x[:split]}).quantized_indices.unique()) / config.num_embeddings
    torch.manual_seed(0)
    return {f"pythae VQ-VAE + PixelCNN ({used:.0%} of codes used)": (seconds, sampler.sample(num_samples=n).numpy())}


def vaekit_models(train_spec: Path, budget: float, n: int, folder: Path) -> tuple[dict, dict]:
    """vaekit's default VAE (what ``vaekit train`` trains), its AE (the README's choice for
    generating images), and both with conv networks, each with
    its default prior (a mixture) and N(0, I) where it has one; the default VAE also with a flow,
    fitted afterwards and timed on its own. Seconds are the whole ``vaekit.train`` call."""
    import vaekit
    from vaekit.priors import FlowPrior, fit_priors

    out, runs = {}, {}
    for name, options in (("VAE (mlp)", {}),
                          ("AE (mlp)", {"model": "ae"}),
                          ("VAE (conv)", {"arch": "conv"}),
                          ("AE (conv)", {"arch": "conv", "model": "ae"})):
        t0 = time.perf_counter()
        run = vaekit.train(str(train_spec), out=folder / name.replace(" ", ""), epochs=1000, time_budget=budget,
                           patience=None, progress=False, report=False, **options)
        seconds = time.perf_counter() - t0
        runs[name] = run
        for prior in run.model.sampling_priors:
            out[f"vaekit {name} + {prior}"] = seconds, run.sample(n, seed=0, prior=prior)
        if name == "VAE (mlp)":
            t0 = time.perf_counter()
            run.model.priors["flow"] = FlowPrior(run.model.latent_dim)
            fit_priors(run.model, run.dataset(run.config.data.spec), kinds=("flow",))
            out[f"vaekit {name} + flow"] = seconds + time.perf_counter() - t0, run.sample(n, seed=0, prior="flow")
    return out, runs


def vaekit_vqvae(train_spec: Path, n: int, folder: Path) -> dict:
    """``vaekit train --model vqvae`` with its defaults, autoregressive prior included: (seconds, samples)."""
    import vaekit

    t0 = time.perf_counter()
    run = vaekit.train(str(train_spec), out=folder / "vqvae", model="vqvae", progress=False, report=False)
    seconds = time.perf_counter() - t0
    used = run.evaluate()["codebook_used"]
    return {f"vaekit VQ-VAE + autoregressive ({used:.0%} of codes used)": (seconds, run.sample(n, seed=0))}


def likelihoods(train_spec: Path, test_spec: Path, epochs: int, k: int, folder: Path) -> dict:
    """The VAE against the hierarchical VAE on the held-out digits' IW-NLL (nats, ``k`` draws),
    same epochs, each with its defaults (the hvae's KL warm-up among them)."""
    import vaekit

    out = {}
    for model in ("vae", "hvae"):
        t0 = time.perf_counter()
        run = vaekit.train(str(train_spec), out=folder / model, model=model, epochs=epochs, progress=False,
                           report=False)
        seconds = time.perf_counter() - t0
        m = run.evaluate(str(test_spec), iw_samples=k)
        out[model] = {"seconds": seconds, "neg_elbo": m["neg_elbo"], "iw_nll": m["iw_nll"],
                      "active": m["active_units"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pythae-epochs", type=int, default=20)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--grid", type=Path, help="write a PNG of 16 samples of each model here")
    p.add_argument("--nll-epochs", type=int, default=30, help="epochs of the VAE and hvae compared on IW-NLL")
    p.add_argument("--iw-samples", type=int, default=500)
    p.add_argument("--vqvae-epochs", type=int, default=20,
                   help="epochs of Pythae's VQ-VAE, and of its PixelCNN prior after it")
    p.add_argument("--parts", default="samples,vqvae,nll",
                   help="what to run: samples (the VAEs and AEs against Pythae's), vqvae (the VQ-VAEs), nll")
    args = p.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(2)
    logging.getLogger("pythae").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_spec, test_spec = mnist_split(tmp / "data")
        train, held = np.load(train_spec), np.load(test_spec)
        floor = quality(held, train[np.random.default_rng(0).choice(len(train), len(held), replace=False)] / 255)
        results, budget, nll = {}, None, None
        if "samples" in parts:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                results.update(pythae_models(train, args.pythae_epochs, args.samples, tmp / "pythae"))
            # Training stops after the epoch under way when the budget runs out, and the mixture is
            # fitted after: three quarters of Pythae's time keeps vaekit's whole call within it.
            budget = 0.75 * results["pythae VAE + N(0, I)"][0]
            results.update(vaekit_models(train_spec, budget, args.samples, tmp / "vaekit")[0])
        if "vqvae" in parts:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                results.update(pythae_vqvae(train, args.vqvae_epochs, args.vqvae_epochs, args.samples, tmp / "pvq"))
            results.update(vaekit_vqvae(train_spec, args.samples, tmp / "vq"))
        if "nll" in parts:
            nll = likelihoods(train_spec, test_spec, args.nll_epochs, args.iw_samples, tmp / "nll")
    print(f"MNIST, 8,000 training digits, {args.samples} samples against the 2,000 held-out digits"
          + (f"; vaekit's time budget {budget:.0f} s (Pythae VAE's, {args.pythae_epochs} epochs)" if budget else "")
          + (f"; Pythae's VQ-VAE and PixelCNN {args.vqvae_epochs} epochs each" if "vqvae" in parts else ""))
    print(f"{'model + prior':34s} {'train s':>8s} {'FID':>7s} {'precision':>9s} {'recall':>7s}")
    print(f"{'real digits (noise floor)':34s} {'':>8s} {floor['fid']:7.1f} {floor['precision']:9.3f} "
          f"{floor['recall']:7.3f}")
    scores = {}
    for name, (seconds, samples) in results.items():
        scores[name] = q = quality(held, samples)
        print(f"{name:34s} {seconds:8.1f} {q['fid']:7.1f} {q['precision']:9.3f} {q['recall']:7.3f}")
    best = min((k for k in scores if k.startswith("pythae")), key=lambda k: scores[k]["fid"], default=None)
    if best:
        print(f"against the best of Pythae ({best}):")
        for name in scores:
            if name.startswith("vaekit"):
                print(f"  {name:32s} FID {scores[name]['fid'] / scores[best]['fid']:.2f}x, recall "
                      f"{scores[name]['recall'] - scores[best]['recall']:+.3f}, time "
                      f"{results[name][0] / results[best][0]:.2f}x")
    if nll:
        print(f"likelihood of the 2,000 held-out digits, {args.nll_epochs} epochs each, IW-NLL with "
              f"{args.iw_samples} draws (nats):")
        for model, m in nll.items():
            print(f"  {model:5s} train {m['seconds']:6.1f} s  -ELBO {m['neg_elbo']:7.2f}  IW-NLL {m['iw_nll']:7.2f}  "
                  f"active units {m['active']}")
        print(f"  hvae - vae: {nll['hvae']['iw_nll'] - nll['vae']['iw_nll']:+.2f} nats")
    if args.grid:
        from vaekit.images import save_grid

        rows = [np.clip(s[:16].reshape(16, 1, 28, 28), 0, 1) for s in (samples for _, samples in results.values())]
        save_grid(args.grid, np.concatenate(rows), ncol=16)
        print("rows:", "; ".join(results))


if __name__ == "__main__":
    main()
