"""How good are generated images? FID and precision/recall in a classifier's feature space.

A model's samples are compared with real held-out images the way the generative-model
literature does, on features of a network trained to recognise such images rather than
on pixels (where a blurry average is "close" to everything):

- **FID** (Heusel et al., 2017): the Fréchet distance between Gaussians fitted to the
  features of real and of generated images. Lower is better; it mixes quality and variety.
- **Precision and recall** (Kynkäänniemi et al., 2019): the share of generated images that
  fall inside the real images' feature manifold (each real image's ball reaching its k-th
  nearest real neighbour), and the share of real images inside the generated ones'.
  Precision is "do samples look real", recall "do samples cover what the data holds".

The feature space is the 128-d penultimate layer of :class:`FeatureNet`, a small digit
classifier whose weights ship with vaekit (``weights/digit-features.safetensors``, made by
``bench/feature_net.py`` from the bundled 5,000 MNIST training digits; 98% on the 10,000
MNIST test digits). It reads small grayscale images: colour images are averaged to gray
and every image is resized to 28 x 28. Such numbers compare models on the same data; they
are not comparable with FIDs published in Inception-v3 features.
"""
from __future__ import annotations

import warnings
from functools import cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import VaekitError

SIDE = 28            # the feature network's input size
NEIGHBOURS = 3       # k of the k-NN manifold balls (the paper's default)
MIN_IMAGES = 10      # the fewest real or generated images measured
WEIGHTS = "digit-features.safetensors"


class FeatureNet(nn.Module):
    """(N, 1, 28, 28) in [0, 1] -> 10 class logits; :meth:`features` gives the 128-d layer before."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),       # 14 x 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # 7 x 7
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(3),  # 3 x 3
            nn.Flatten(), nn.Linear(64 * 9, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@cache
def feature_net() -> FeatureNet:
    """The shipped feature network, loaded once per process."""
    from safetensors.torch import load

    net = FeatureNet()
    net.load_state_dict(load(resources.files("vaekit").joinpath("weights", WEIGHTS).read_bytes()))
    return net.eval()


def to_feature_input(images) -> torch.Tensor:
    """Images (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3}, values in [0, 1]
    (uint8 is read as 0-255) -> (N, 1, 28, 28) float32 in [0, 1]."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.dtype == torch.uint8:
        x = x.float() / 255
    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = x[:, None]
    elif x.dim() == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise VaekitError(f"sample quality is measured on images (N, H, W) or (N, H, W, C), got shape "
                          f"{tuple(x.shape)}")
    x = x.mean(1, keepdim=True).clamp(0, 1)  # (NaN stays NaN: sample_quality refuses it)
    if x.shape[-2:] != (SIDE, SIDE):
        x = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", antialias=True, align_corners=False)
    return x


@torch.no_grad()
def features(images, batch_size: int = 1000) -> np.ndarray:
    """The feature network's 128-d features of ``images`` (see :func:`to_feature_input`), float64."""
    x, net = to_feature_input(images), feature_net()
    return torch.cat([net.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, F) and b (M, F):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        root = linalg.sqrtm(s_a @ s_b)
    if caught or not np.isfinite(root).all():  # a singular product: nudge both, as the reference code does
        eye = np.eye(len(s_a)) * 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = linalg.sqrtm((s_a + eye) @ (s_b + eye))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root.real))


def _kth_distances(x: np.ndarray, k: int) -> np.ndarray:
    d = torch.cdist(torch.from_numpy(x), torch.from_numpy(x))
    return d.kthvalue(k + 1, dim=1).values.numpy()  # +1: each point is its own nearest neighbour


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """Share of ``points`` within ``radii`` of at least one of ``centres``."""
    d = torch.cdist(torch.from_numpy(points), torch.from_numpy(centres))
    return float((d <= torch.from_numpy(radii)[None]).any(1).double().mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) of feature sets (N, F), (M, F)."""
    if min(len(real), len(fake)) <= k:
        raise VaekitError(f"precision and recall need more than {k} real and generated images")
    return (_inside(fake, real, _kth_distances(real, k)), _inside(real, fake, _kth_distances(fake, k)))


def sample_quality(real, fake) -> dict:
    """FID, precision and recall of generated images ``fake`` against real images ``real``.
    Both are image arrays as :func:`to_feature_input` takes them, at least :data:`MIN_IMAGES`
    each; FID is biased upwards at small sizes, so compare models at the same sizes, in hundreds."""
    return compare(real_features(real), generated_features(fake))


def real_features(images) -> np.ndarray:
    """The features of real images, checked (measure several sets against them with :func:`compare`)."""
    return _checked_features(images, "real", "the real images hold NaN or infinite values; clean them first")


def generated_features(images) -> np.ndarray:
    return _checked_features(images, "generated", "the generated images hold NaN or infinite values: the model "
                             "has diverged (or the temperature is too high); retrain it with a lower --lr")


def _checked_features(images, name: str, not_finite: str) -> np.ndarray:
    if len(images) < MIN_IMAGES:
        raise VaekitError(f"sample quality needs at least {MIN_IMAGES} {name} images, got {len(images)}; "
                          "use hundreds")
    f = features(images)
    if not np.isfinite(f).all():
        raise VaekitError(not_finite)
    return f


def compare(real: np.ndarray, fake: np.ndarray) -> dict:
    """FID, precision and recall of feature sets (from :func:`real_features`, :func:`generated_features`)."""
    precision, recall = precision_recall(real, fake)
    return {"fid": frechet_distance(real, fake), "precision": precision, "recall": recall}
