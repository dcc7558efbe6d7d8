"""Show what a run holds: its config, data, training progress and files."""
from __future__ import annotations

import argparse

from ._common import add_run, print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")


def _columns(schema: list[dict] | None) -> list[str]:
    """A table's column kinds, one line each (from config.json's schema; numbers alone have none)."""
    if not schema:
        return []
    wide = max(len(c["name"]) for c in schema)
    lines = []
    for c in schema:
        levels = c.get("levels") or []
        shown = ", ".join(levels[:6]) + (", ..." if len(levels) > 6 else "")
        kind = c["kind"] + (f", {len(levels)} levels" if c["kind"] == "categorical" else "") + \
            (f" ({shown})" if levels else "")
        lines.append(f"{'columns' if not lines else '':<8} {c['name']:<{wide}}  {kind}")
    return lines


def run(args: argparse.Namespace) -> int:
    # Reads JSON files only: no torch, so it is instant.
    from ..config import RunConfig
    from ..runfolder import CONFIG, DETECTOR, RunFolder

    folder = RunFolder.open(args.run)
    config = RunConfig.load(folder.file(CONFIG))
    metrics = folder.metrics()
    info = {"run": str(folder.path), "config": config.to_dict(),
            "epochs_done": metrics[-1]["epoch"] if metrics else 0,
            "last_epoch": metrics[-1] if metrics else None,
            "best_val_loss": min((m["val_loss"] for m in metrics if m.get("val_loss") is not None),
                                 default=None),
            "files": sorted(p.name for p in folder.path.iterdir() if not p.name.startswith("."))}
    info["kind"] = folder.kind
    detector_file = folder.file(DETECTOR)
    if folder.kind == "detector":  # an anomaly detector: its own summary instead of training progress
        import json

        state = json.loads(detector_file.read_text())
        scores = state["decision_scores"]
        info["detector"] = {"threshold": state["threshold"], "contamination": state["params"]["contamination"],
                            "score": state["params"].get("anomaly_score", state["params"].get("score")),  # renamed
                            "kind": state["kind"],
                            "training_rows": len(scores),
                            "flagged_in_training": sum(v > state["threshold"] for v in scores)}
    if args.json:
        print_json(info)
        return 0
    m, d, t = config.model, config.data, config.train
    print(f"run      {info['run']}")
    print(f"model    {m.model} ({m.arch}), input {tuple(m.input_shape)}, hidden {list(m.hidden_dims)}, "
          f"latent {m.latent_dim}, likelihood {m.likelihood}")
    if "detector" not in info:
        storage = f"; {d.storage_reason}" if d.storage_reason else ""
        print(f"data     {d.spec} ({d.layout}), validation fraction {d.val_fraction}{storage}")
    for line in _columns(d.schema):
        print(line)
    if "detector" in info:
        det = info["detector"]
        print(f"detector {det['kind']} data, score {det['score']}, threshold {det['threshold']:.4g} (contamination "
              f"{det['contamination']}: {det['flagged_in_training']} of {det['training_rows']} training rows flagged)")
    else:
        processes = f", {t.world_size} processes" if t.world_size > 1 else ""
        print(f"training {info['epochs_done']}/{t.epochs} epochs, batch {t.batch_size}, lr {t.lr}, seed {t.seed}"
              f"{processes}")
    if metrics:
        last = metrics[-1]
        val = f", val loss {last['val_loss']:.2f}" if last.get("val_loss") is not None else ""
        print(f"last     train loss {last['train_loss']:.2f}{val}, {last['samples_per_s']:,.0f} samples/s")
    if info["best_val_loss"] is not None:
        print(f"best     val loss {info['best_val_loss']:.2f}")
    print(f"files    {', '.join(info['files'])}")
    return 0
