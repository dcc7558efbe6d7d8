"""The run report: one self-contained HTML file (pictures embedded, no network), written at
the end of ``vaekit train`` and by ``vaekit report``. Each figure comes from a small function
in :mod:`vaekit.plots` or :mod:`vaekit.images` that the commands reuse."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import torch

from . import plots
from .atomic import atomic_write
from .data.dataset import from_layout, to_layout
from .errors import VaekitError
from .footprint import EVAL_ROWS
from .images import grid_png, pairs

REPORT = "report.html"
MAX_POINTS = 2000  # inputs drawn in the latent map; keeps the report quick to write

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 2px 10px; text-align: left; }
th { background: #f3f3f3; } img { max-width: 100%; image-rendering: pixelated; }
.caption { color: #555; font-size: 0.9em; } code { background: #f6f6f6; padding: 0 3px; }
"""


def _png(data: bytes) -> str:
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def figure(fig) -> str:
    return _png(plots.to_png_bytes(fig))


CELL = 84  # pixels per image at the least in the report's grids: 28x28 digits show at 3x, not as thumbnails


def picture(images: np.ndarray, ncol: int | None = None) -> str:
    """(N, C, H, W) in [0, 1] as an embedded PNG grid at the images' own aspect and colour,
    each image enlarged (without smoothing) to at least ``CELL`` pixels high."""
    return _png(grid_png(images, ncol, min_cell=CELL))


def table(rows: list[tuple[str, object]]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows) + \
        "</table>"


def config_tables(config: dict) -> str:
    """A run's config as one table per part (model, data, training), long lists summarised."""
    def value(v):
        if isinstance(v, (list, tuple)) and len(v) > 8:
            shown = ", ".join(f"{x:.3g}" if isinstance(x, float) else str(x) for x in v[:3])
            return f"{len(v)} values: {shown}, ..."
        if isinstance(v, (list, tuple)):
            return ", ".join(str(x) for x in v) or "none"
        return "none" if v is None else v

    parts = {"model": "Model", "data": "Data", "train": "Training"}
    return "".join(f"<h3>{parts.get(name, name)}</h3>" + table([(k, value(v)) for k, v in group.items()])
                   for name, group in config.items())


def page(title: str, sections: list[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}</body></html>\n")


SAMPLE_QUALITY_N = 2000     # samples the report measures (fewer where fewer images are held out)
MIN_SAMPLE_QUALITY_N = 200  # below this FID's covariance of 128 features is too noisy to show


# -- figures of a trained run ----------------------------------------------------------------
def latent_figure(run, ds, method: str = "pca"):
    """Codes of ``ds`` in 2-D coloured by label; for a 2-D code of images, the manifold beside."""
    codes = run.encode(ds)
    points, axis = plots.project_2d(codes, method)
    manifold = None
    if codes.shape[1] == 2 and ds.kind == "image" and not run.model.n_classes:
        is_vae = run.model.generative
        bounds = None if is_vae else [(np.percentile(codes[:, k], 2), np.percentile(codes[:, k], 98))
                                      for k in (0, 1)]

        manifold = plots.manifold_image(lambda z: from_layout(run.decode(z), ds.layout), prior=is_vae, bounds=bounds)
    return plots.latent_map(points, ds.y.numpy() if ds.y is not None else None, axis, manifold)


def _code_size(run) -> str:
    grid = getattr(run.model, "grid", None)  # a VQ-VAE's code is a grid of symbols
    if grid is None:
        return str(run.config.model.latent_dim)
    q = run.model.quantizer
    return f"{run.model.latent_dim} (a {grid[0]} x {grid[1]} grid of {q.channels} channels: {q.size} symbols)"


def _summary(run, metrics: list[dict]) -> str:
    cfg = run.config
    last = metrics[-1] if metrics else {}
    best_val = min((m["val_loss"] for m in metrics if m.get("val_loss") is not None), default=None)
    rows = [("run folder", run.path), ("model", f"{cfg.model.model} ({cfg.model.arch})"),
            ("input shape", tuple(cfg.model.input_shape)), ("hidden widths", list(cfg.model.hidden_dims)),
            ("latent dimensions", _code_size(run)), ("likelihood", cfg.model.likelihood),
            ("data", f"{cfg.data.spec} ({cfg.data.layout})"), ("validation fraction", cfg.data.val_fraction),
            ("epochs trained", f"{len(metrics)} of {cfg.train.epochs}"),
            ("training time", f"{sum(m['seconds'] for m in metrics):.1f} s"),
            ("device, precision", f"{last.get('device', '?')}, {last.get('precision', '?')}"),
            ("batch size, learning rate, seed", f"{cfg.train.batch_size}, {cfg.train.lr}, {cfg.train.seed}")]
    if cfg.train.noise:
        rows.append(("denoising noise", cfg.train.noise))
    if cfg.model.model in ("vae", "cvae", "iwae", "hvae"):
        rows.append(("beta, KL warm-up, free bits", f"{cfg.train.beta}, {cfg.train.kl_warmup}, "
                                                    f"{cfg.train.free_bits}"))
    final = [("last epoch: train loss", last.get("train_loss")), ("last epoch: validation loss", last.get("val_loss")),
             ("best validation loss", best_val)]
    return table(rows) + "<h3>final metrics</h3>" + table([(k, v) for k, v in final if v is not None])


def _sample_quality(run, data, held: int) -> str:
    """A caption with the samples' FID, precision and recall against the ``held`` held-out images
    and the real-against-real floor (vaekit.sample_quality), for as many samples as there are
    held-out images, up to 2,000; nothing where there are too few to measure."""
    n = min(held, SAMPLE_QUALITY_N)
    if n < MIN_SAMPLE_QUALITY_N:
        return ""
    try:
        q = run.sample_quality(n, data=data)
    except VaekitError as e:  # samples that are no numbers (a diverged model): say so, show the rest
        return f'<p class="caption">no sample quality: {html.escape(str(e))}</p>'

    floor = (f" (real images against real: {q['fid_floor']:.1f}, {q['precision_floor']:.2f}, "
             f"{q['recall_floor']:.2f})") if "fid_floor" in q else ""
    return (f'<p class="caption">{n} samples against {q["n_real"]} held-out images: FID {q["fid"]:.1f}, precision '
            f'{q["precision"]:.2f}, recall {q["recall"]:.2f}{floor}; in the features of vaekit\'s digit classifier '
            "(lower FID is better; precision: samples that look real, recall: real images the samples cover)</p>")


def build_run_report(run, data=None) -> str:
    """The HTML of a trained run's report; ``data`` defaults to the run's validation split."""
    from .evaluation import evaluate, psnr
    from .noise import parse_noise

    metrics = run.metrics()
    ds = run.dataset(data)
    held = len(ds)
    if len(ds) > MAX_POINTS:
        ds = ds.subset(torch.linspace(0, len(ds) - 1, MAX_POINTS).long())
    layout = run.config.data.layout
    sections = [("Run", _summary(run, metrics))]
    m = evaluate(run.model, ds, run.rows(EVAL_ROWS))
    shown = {k: v for k, v in m.items() if k != "kl_per_dim" and v is not None}
    sections.append((f"Metrics on {ds.name} ({len(ds)} samples)", table(list(shown.items()))))
    if metrics:
        sections.append(("Loss curves", figure(plots.loss_curves(metrics))))
        if metrics[-1].get("kl_per_dim"):
            sections.append(("KL per latent dimension", figure(plots.kl_heatmap(metrics)) +
                             f'<p class="caption">{m["active_units"]} of {run.config.model.latent_dim} dimensions '
                             "are active (their posterior means vary); a dark row is a collapsed dimension.</p>"))
    first = ds.subset(torch.arange(min(16, len(ds))))
    if ds.kind == "image":
        recon = from_layout(run.reconstruct(first), layout)
        sections.append(("Reconstructions", picture(pairs(first.batch().numpy(), recon), ncol=8) +
                         '<p class="caption">each row of inputs above its reconstructions</p>'))
        if run.can_sample:
            samples = from_layout(run.sample(64, seed=0), layout)
            sections.append((f"Samples from the prior ({run.model.default_prior})",
                             picture(samples, ncol=run.model.n_classes or 8) + _sample_quality(run, data, held)))
        if run.model.generative:
            other = _other_label(ds)
            path = from_layout(run.interpolate(ds, 0, other, steps=10, method="slerp"), layout)
            sections.append(("Interpolation", picture(path, ncol=10) +
                             f'<p class="caption">from input 0 to input {other} (spherical path between their codes)'
                             "</p>"))
        if run.config.train.noise:
            noise = parse_noise(run.config.train.noise)
            clean = first.batch()
            noisy = noise.apply(clean, torch.Generator().manual_seed(0), clip=True)
            denoised = from_layout(run.denoise(to_layout(noisy.numpy(), layout)), layout)
            sections.append(("Denoising", picture(np.concatenate([noisy.numpy()[:8], denoised[:8], clean.numpy()[:8]]),
                                                  ncol=8) +
                             f'<p class="caption">rows: noisy ({run.config.train.noise}), denoised, clean. PSNR '
                             f"{psnr(clean.numpy(), noisy.numpy()):.2f} dB noisy, "
                             f"{psnr(clean.numpy(), denoised):.2f} dB denoised</p>"))
    else:
        x = ds.batch()  # in the model's units: standardised if the run standardises
        y = ds.labels(None, run.model)  # a conditional model needs them
        with torch.no_grad():
            recon = run.model.reconstruct(x.to(run.device), None if y is None else y.to(run.device)).cpu()
        errors = ((recon - x) ** 2).mean(0).numpy()
        names = run.config.data.columns or [f"x{i}" for i in range(len(errors))]
        units = "standardised units" if run.config.data.mean is not None else "the data's units"
        sections.append(("Reconstruction error per feature", figure(plots.feature_errors(errors, names)) +
                         f'<p class="caption">mean squared error per feature, in {units}</p>'))
    sections.append(("Latent space", figure(latent_figure(run, ds))))
    sections.append(("Config", config_tables(run.config.to_dict()) +
                     '<p class="caption">as recorded in the run\'s config.json</p>'))
    return page(f"vaekit run: {run.path.name if run.path else 'in memory'}", sections)


def _other_label(ds) -> int:
    """An input of another class than input 0 (or simply the last), for the interpolation."""
    if ds.y is not None:
        different = torch.nonzero(ds.y != ds.y[0])
        if len(different):
            return int(different[0, 0])
    return len(ds) - 1


def write_run_report(run, data=None) -> Path:
    text = build_run_report(run, data)
    return atomic_write(Path(run.path) / REPORT, lambda tmp: Path(tmp).write_text(text))


def write_detector_report(detector, folder: Path, data=None, name: str = "", scores=None) -> Path:
    text = build_detector_report(detector, folder, data, name, scores)
    return atomic_write(Path(folder) / REPORT, lambda tmp: Path(tmp).write_text(text))


# -- anomaly detectors -------------------------------------------------------------------------
def build_detector_report(detector, folder: Path, data=None, name: str = "", scores=None) -> str:
    """Training scores with the threshold; with ``data`` (a Dataset), its scores (``scores``
    if already computed), and when it has 0/1 labels, ROC/PR curves; the most anomalous
    inputs beside their reconstructions."""
    from .anomaly import anomaly_marks

    rows = [("detector folder", folder), ("model", f"{detector.model} ({detector.model_config_.arch})"),
            ("score", detector.anomaly_score_), ("contamination", detector.contamination),
            ("threshold", detector.threshold_), ("input shape", detector.sample_shape_),
            ("training rows", len(detector.decision_scores_))]
    sections = [("Detector", table(rows)),
                ("Training scores", figure(plots.score_histogram(detector.decision_scores_, detector.threshold_)))]
    if data is not None:
        ds = data
        scores = detector.decision_function(ds) if scores is None else scores
        labels = anomaly_marks(ds)
        sections.append((f"Scores on {name or 'the data'}", figure(plots.score_histogram(scores, detector.threshold_,
                                                                                          labels))))
        if labels is not None and 0 < labels.sum() < len(labels):
            sections.append(("ROC and precision-recall", figure(plots.roc_pr(labels, scores))))
        if ds.kind == "image":
            top = torch.as_tensor(np.argsort(-scores)[:8].copy())
            worst = ds.subset(top)
            x = worst.batch()
            with torch.no_grad():
                recon = detector.net_.reconstruct(x).numpy()
            sections.append(("Most anomalous inputs", picture(np.concatenate([x.numpy(), recon]), ncol=8) +
                             '<p class="caption">the 8 highest scores (top) and their reconstructions (bottom)</p>'))
        else:
            top = np.argsort(-scores)[:10]
            sections.append(("Most anomalous rows", table([(f"row {i}", f"score {scores[i]:.4g}") for i in top])))
    return page(f"vaekit detector: {Path(folder).name}", sections)
