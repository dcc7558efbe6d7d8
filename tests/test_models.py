"""The models and their loss: the classic VAE exactly, shapes, distributions, the AE."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent

import vaekit
from vaekit.models import AEOutput, VAEOutput
from vaekit.objectives import iw_nll, loss_terms


def classic_loss(recon_x, x, mu, logvar):
    """Literal transcription of the classic PyTorch VAE example's loss (per batch, summed)."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def test_default_vae_is_the_classic_784_400_20():
    model = vaekit.VAE()
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(400, 784), (400,), (40, 400), (40,), (400, 20), (400,), (784, 400), (784,)]
    assert any(isinstance(m, torch.nn.ReLU) for m in model.encoder.modules())


def test_neg_elbo_equals_the_classic_loss_on_the_same_weights_and_noise():
    torch.manual_seed(0)
    model = vaekit.VAE()
    x = torch.rand(64, 1, 28, 28)
    torch.manual_seed(1)
    ours = loss_terms(model, x).loss.mean()

    # Same weights, same epsilon: recompute everything the classic way.
    mu, logvar = model.posterior_params(x)
    torch.manual_seed(1)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    recon = torch.sigmoid(model.decoder(z)).flatten(1)
    expected = classic_loss(recon, x, mu, logvar) / x.shape[0]
    assert torch.allclose(ours, expected, rtol=1e-5), (ours.item(), expected.item())


def test_vae_outputs_distributions_and_a_dataclass():
    model = vaekit.VAE(input_shape=(3, 6, 5), latent_dim=3, hidden_dims=(16, 8))
    x = torch.rand(7, 3, 6, 5)
    out = model(x)
    assert isinstance(out, VAEOutput)
    assert isinstance(out.posterior, Independent) and out.posterior.event_shape == (3,)
    assert out.z.shape == (7, 3)
    assert out.likelihood.batch_shape == (7,) and out.likelihood.event_shape == (3, 6, 5)
    assert out.likelihood.log_prob(x).shape == (7,)
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(4).shape == (4, 3, 6, 5)


def test_bernoulli_likelihood_is_stable_for_extreme_logits():
    model = vaekit.VAE(input_shape=(4,), latent_dim=2, hidden_dims=(8,))
    with torch.no_grad():
        last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias.fill_(200.0)  # sigmoid saturates to exactly 1 in float32
    x = torch.zeros(3, 4)
    assert torch.isfinite(loss_terms(model, x).loss).all()


def test_ae_loss_is_squared_error_summed_per_sample():
    model = vaekit.AE(input_shape=(1, 4, 4), latent_dim=2, hidden_dims=(8,))
    x = torch.rand(5, 1, 4, 4)
    out = model(x)
    assert isinstance(out, AEOutput) and out.z.shape == (5, 2)
    terms = loss_terms(model, x)
    expected = ((out.reconstruction - x) ** 2).sum(dim=(1, 2, 3))
    assert torch.allclose(terms.loss, expected, atol=1e-6)
    assert (out.reconstruction >= 0).all() and (out.reconstruction <= 1).all()  # sigmoid for [0, 1] data


def test_iw_bound_is_tighter_than_the_elbo():
    torch.manual_seed(0)
    model = vaekit.VAE(input_shape=(6,), latent_dim=2, hidden_dims=(16,))
    x = torch.rand(32, 6).round()
    with torch.no_grad():
        elbo = torch.stack([loss_terms(model, x).loss.mean() for _ in range(200)]).mean()
        bound = iw_nll(model, x, k=500, chunk=64).mean()
    assert bound < elbo


def test_fast_loss_terms_match_torch_distributions():
    """The training loss's fused formulas equal the distribution objects users see."""
    from torch.distributions import kl_divergence

    from vaekit import likelihoods
    from vaekit.objectives import kl_to_standard_normal

    torch.manual_seed(0)
    params, x = torch.randn(5, 2, 3, 4) * 4, torch.rand(5, 2, 3, 4)
    for name in likelihoods.NAMES:
        likelihood = likelihoods.build(name, (2, 3, 4))
        if name.endswith("-learned"):
            with torch.no_grad():
                likelihood.log_scale.uniform_(-1, 1)
        expected = likelihood.distribution(params).log_prob(x)
        assert torch.allclose(likelihood.log_prob(params, x), expected, rtol=1e-5), name
        draws = torch.stack([params, params.flip(0)])  # K = 2 outputs for the same x, as importance sampling has
        each = torch.stack([likelihood.distribution(d).log_prob(x) for d in draws])
        assert torch.allclose(likelihood.log_prob(draws, x), each, rtol=1e-5), name
    model = vaekit.VAE(input_shape=(2, 3, 4), latent_dim=3, hidden_dims=(8,))
    out = model(x)
    assert torch.allclose(kl_to_standard_normal(out.loc, out.logvar),
                          kl_divergence(out.posterior, model.prior()), rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 30, 45), (1, 7, 5)])
@pytest.mark.parametrize("cls", [vaekit.AE, vaekit.VAE])
def test_conv_models_fit_any_image_size(cls, shape):
    model = cls(input_shape=shape, latent_dim=3, hidden_dims=(8, 16), arch="conv")
    x = torch.rand(2, *shape)
    assert model.reconstruct(x).shape == x.shape
    assert torch.isfinite(loss_terms(model, x).loss).all()


def test_conv_needs_images():
    with pytest.raises(vaekit.VaekitError, match="arch='conv' needs images"):
        vaekit.VAE(input_shape=(10,), arch="conv")
