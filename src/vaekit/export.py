"""Deployable models: ONNX files that run without PyTorch (ONNX Runtime, browsers, C++...).

``encoder.onnx``: x -> posterior loc and scale (an AE: its code z);
``decoder.onnx``: z -> the likelihood mean (the reconstruction);
``scorer.onnx`` (detectors): x -> anomaly score, deterministic (the fixed draws are baked in);
``sampler-PRIOR.onnx`` (runs, one per prior the model has: normal, gmm, flow, autoregressive): standard-normal
``noise`` (N, latent_dim; for an hvae's ``normal``, N, latent_dim + latent_dim // 2: its upper
layer first), times a temperature if wanted, -> new samples; a mixture also takes
``uniform`` (N,) draws in [0, 1) that pick each sample's component (a conditional model's
label picks it instead); a VQ-VAE's ``autoregressive`` prior takes only ``uniform`` draws, one
per position of its code grid (N, positions), and draws at temperature 1. The randomness stays
outside the graph, so the caller seeds it.
Every file takes a dynamic batch size. Inputs are float32 in the model's own layout:
(N, D) for tables (raw values: a detector's standardisation is part of the graph) and
(N, C, H, W) in [0, 1] for images. A conditional model also takes int64 labels ``y`` (N,).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_write
from .errors import VaekitError
from .robust import robust_standardize


class _Standardise(nn.Module):
    """A table detector's units (:func:`vaekit.robust.robust_standardize`) as part of the graph."""

    def __init__(self, detector):
        super().__init__()
        # The graph computes in float32: a center past its range is its largest number, a scale below
        # its smallest normal one is that (0 would divide by 0). Where float32 cannot hold a column's
        # units (a column of 1e12 varying by 1e3), the graph's scores differ from decision_function's.
        f32 = torch.finfo(torch.float32)
        center = torch.as_tensor(detector.center_, dtype=torch.float64).clamp(-f32.max, f32.max)
        self.register_buffer("center", center.float())
        scale = torch.as_tensor(detector.scale_, dtype=torch.float64).clamp(f32.tiny, f32.max)
        self.register_buffer("scale", scale.float())
        self.clip = detector.clip_

    def forward(self, x):
        return robust_standardize(x, self.center, self.scale, self.clip)


class Encoder(nn.Module):
    def __init__(self, model, prepare: nn.Module | None = None):
        super().__init__()
        self.model, self.prepare = model, prepare or nn.Identity()

    def forward(self, x, y=None):
        code = self.model.encode(self.prepare(x), y)
        return (code.mean, code.stddev) if self.model.generative else code.mean


class Decoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z, y=None):
        return self.model.decode_mean(z, y)


class Sampler(nn.Module):
    """Draws from one of the model's priors, given the random numbers, decoded to the likelihood mean."""

    def __init__(self, model, prior: str):
        super().__init__()
        self.model, self.prior = model, prior

    def forward(self, noise, extra=None):
        """``extra``: a conditional model's labels, else a mixture's uniform draws, else nothing."""
        y = extra if self.model.n_classes else None
        if self.prior == "normal":
            z = self.model.from_noise(noise)  # a hierarchical model's own prior draws its upper layer first
        elif self.prior == "gmm":
            gmm = self.model.priors["gmm"]
            z = gmm.transform(noise, y.long() if y is not None else gmm.pick(extra))
        else:  # a flow's base draws, or an autoregressive prior's uniform draws (one per grid position)
            z = self.model.priors[self.prior].transform(noise)
        return self.model.decode_mean(z, y)


class Scorer(nn.Module):
    def __init__(self, detector):
        super().__init__()
        from .anomaly import score_draws

        self.model, self.score = detector.net_, detector.anomaly_score_
        self.prepare = _Standardise(detector) if detector.kind_ == "tabular" else nn.Identity()
        self.register_buffer("eps", score_draws(detector))

    def forward(self, x):
        from .anomaly import row_scores

        return row_scores(self.model, self.prepare(x), self.score, self.eps)


def _export(module: nn.Module, example: tuple, names: list[str], outputs: list[str], path: Path,
            optimize: bool = True) -> Path:
    """``optimize``: fold the graph's constants before saving (ONNX Runtime optimises it again
    when it loads it either way). An autoregressive sampler is one copy of the prior per grid
    position; folding 49 copies took 90 s of its 2 minutes, for a file a quarter smaller."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise VaekitError("ONNX export needs the onnx and onnxscript packages; pip install 'vaekit[export]'") \
            from None
    batch = torch.export.Dim("batch", min=1)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it lists every optional operator library it does not find
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module.eval(), example, input_names=names, output_names=outputs,
                                        dynamic_shapes=tuple({0: batch} for _ in example), dynamo=True,
                                        optimize=optimize, verbose=False)
    finally:
        exporter_log.setLevel(level)
    atomic_write(path, lambda tmp: program.save(str(tmp)))
    return path


def export_onnx(folder, out: str | Path | None = None) -> list[Path]:
    """Write the ONNX files of a run or detector folder into ``out`` (default: FOLDER/onnx)."""
    from .anomaly import AnomalyDetector
    from .runfolder import RunFolder

    folder = Path(folder)
    out = Path(out) if out is not None else folder / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    detector = None
    if RunFolder.open(folder).kind == "detector":
        detector = AnomalyDetector.load(folder)
        model, shape = detector.net_.cpu(), detector.sample_shape_
        prepare = _Standardise(detector) if detector.kind_ == "tabular" else None
    else:
        from .run import load

        run = load(folder, device="cpu")
        model, shape, prepare = run.model, run.config.model.input_shape, None
    model.eval()
    x = torch.rand(2, *shape)
    z = torch.zeros(2, model.latent_dim)
    labels = (torch.zeros(2, dtype=torch.long),) if model.n_classes else ()
    label_names = ["y"] if model.n_classes else []
    code_names = ["loc", "scale"] if model.generative else ["z"]
    written = [_export(Encoder(model, prepare), (x, *labels), ["x", *label_names], code_names, out / "encoder.onnx"),
               _export(Decoder(model), (z, *labels), ["z", *label_names], ["x_mean"], out / "decoder.onnx")]
    if detector is not None:
        written.append(_export(Scorer(detector), (x,), ["x"], ["score"], out / "scorer.onnx"))
    else:
        for prior in model.sampling_priors:
            if prior == "autoregressive":  # its randomness is one uniform draw per grid position
                written.append(_export(Sampler(model, prior), (torch.rand(2, model.positions),), ["uniform"],
                                       ["x_mean"], out / f"sampler-{prior}.onnx", optimize=False))
                continue
            picks = prior == "gmm" and not model.n_classes
            noise = torch.zeros(2, model.noise_dim if prior == "normal" else model.latent_dim)
            inputs = (noise, *((torch.rand(2),) if picks else ()), *labels)
            names = ["noise", *(["uniform"] if picks else []), *label_names]
            written.append(_export(Sampler(model, prior), inputs, names, ["x_mean"], out / f"sampler-{prior}.onnx"))
    return written
