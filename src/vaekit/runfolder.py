"""The files of a run folder, each written atomically so a crash never leaves half a file.

``config.json`` holds enough to rebuild the model and the data split, ``metrics.jsonl``
one line per epoch, ``model.safetensors`` the best weights (loading never runs pickled
code), ``training_state.pt`` what ``--resume`` needs. torch is imported only by the
methods that read or write tensors, so ``vaekit info`` stays instant.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .atomic import atomic_write
from .config import RunConfig
from .errors import VaekitError, option

CONFIG, METRICS, WEIGHTS, STATE = "config.json", "metrics.jsonl", "model.safetensors", "training_state.pt"
RECONSTRUCTIONS, SAMPLES = "reconstructions.png", "samples.png"
DETECTOR = "detector.json"  # present in (and only in) an anomaly detector's folder
LOCK = ".vaekit.lock"  # held (flock) by the process writing the run; the kernel lets go when it ends
STATE_KEYS = {"model", "optimizer", "epoch", "best_loss", "bad_epochs", "stopped_early"}  # in every checkpoint


def resume_hint(path, epoch: int) -> str:
    """How to go on from a run stopped now, after ``epoch`` finished epochs (appended to messages)."""
    if epoch == 0:
        return (f"; {path} has no finished epoch yet: train again with {option('out', path)}, or "
                f"{option('resume', path)} as it was configured")
    return f"; {path} keeps epoch {epoch}: continue with {option('resume', path)}"


def finish_hint(path) -> str:
    """How to go on from a run stopped after its last epoch, before its priors, pictures or report."""
    return f"; {path} has trained its epochs: finish it (priors, pictures, report) with {option('resume', path)}"


def foreign_state(path) -> VaekitError:
    """The error for a checkpoint whose weights are another model's."""
    return VaekitError(f"{path} holds another model's weights, so the run cannot be continued; start a new run")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is the temporary file of a run folder's write (atomic_write's naming)."""
    return any(name.startswith(f".{stem}.") and name.endswith(suffix) for stem, suffix in
               map(os.path.splitext, (CONFIG, METRICS, WEIGHTS, STATE, RECONSTRUCTIONS, SAMPLES)))


class RunLock:
    """An exclusive lock on a run folder for as long as one process writes to it, so that two
    ``--resume`` of one run cannot both write its epochs. Advisory (``flock``): vaekit's own
    writers respect it; where the platform has no ``fcntl`` it does nothing."""

    def __init__(self, path: Path):
        self.file = None
        try:
            import fcntl
        except ImportError:  # Windows
            return
        lock = path / LOCK
        f = open(lock, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            who = f" (pid {holder})" if holder else ""
            raise VaekitError(f"{path} is being written by another vaekit process{who}; wait for it to finish "
                              "or stop it, then try again") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self.file = f

    def clear_temporaries(self, folder: Path) -> None:
        """Delete the temporary files of writes cut short (a kill -9 mid-checkpoint leaves one,
        ``.training_state.x1y2.pt``): while the lock is held, no write of this run is under way."""
        if self.file is None:
            return  # without a lock, another process's write could be under way
        for stale in folder.iterdir():
            if is_temporary(stale.name):
                stale.unlink(missing_ok=True)

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing lets go of the lock
            self.file = None


class RunFolder:
    """The files of one run."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def create(cls, path: str | os.PathLike, resumable: bool = True) -> RunFolder:
        """A new run folder at ``path``, which may exist if it is empty or holds a run stopped
        before its first epoch ended (nothing trained to lose: it is trained anew)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())) and not cls(path).unstarted():
            hint = f", or continue it with {option('resume', path)}" if resumable else ""
            raise VaekitError(f"{path} already exists; choose another {option('out')}{hint}")
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def kind(self) -> str:
        """"detector" for an anomaly detector's folder (``vaekit detect fit``), else "run"."""
        return "detector" if self.file(DETECTOR).exists() else "run"

    def unstarted(self) -> bool:
        """Whether this folder holds a run that never finished an epoch: a config and nothing
        trained (no weights, no checkpoint, no metrics), or only vaekit's lock (it stopped while
        writing the config)."""
        if self.file(LOCK).exists() and all(p.name == LOCK or is_temporary(p.name) for p in self.path.iterdir()):
            return True  # nothing but vaekit's own lock and temporaries: nothing else to lose
        names = {p.name for p in self.path.iterdir() if not p.name.startswith(".")}
        if not (names <= {CONFIG, METRICS} and CONFIG in names) or self.metrics():
            return False
        try:  # vaekit's own config, not some other program's file of the same name
            return {"model", "data", "train"} <= set(json.loads(self.file(CONFIG).read_text()))
        except (OSError, ValueError, TypeError):
            return False

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunFolder:
        path = Path(path)
        if not path.is_dir():
            raise VaekitError(f"{path}: no such run folder; give a folder written by vaekit train or vaekit detect fit")
        if not (path / CONFIG).exists():
            raise VaekitError(f"{path} is not a vaekit run folder (no {CONFIG})")
        return cls(path)

    def save_config(self, config: RunConfig) -> None:
        atomic_write(self.file(CONFIG), lambda tmp: config.save(Path(tmp)))

    def save_weights(self, model, config: RunConfig) -> None:
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        meta = {"format": "pt", "vaekit_config": json.dumps(config.to_dict())}
        atomic_write(self.file(WEIGHTS), lambda tmp: save_file(tensors, tmp, metadata=meta))

    def load_weights(self, model) -> None:
        from safetensors.torch import load_file

        path = self.file(WEIGHTS)
        if not path.exists():
            raise VaekitError(f"{path} is missing: the run has no trained weights; train it again or "
                              f"continue it with {option('resume', self.path)}")
        try:
            tensors = load_file(path)
        except Exception as e:  # safetensors raises its own error types for damaged files
            reason = " ".join(str(e).split())
            raise VaekitError(f"{path} is corrupt or unreadable ({reason}); retrain the run") from None
        from .priors import saved_priors

        tensors = saved_priors(model, tensors)
        try:
            model.load_state_dict(tensors)
        except RuntimeError:
            raise VaekitError(f"{path} does not match the model in {CONFIG}; retrain the run") from None

    def save_state(self, state: dict) -> None:
        import torch

        atomic_write(self.file(STATE), lambda tmp: torch.save(state, tmp))

    def load_state(self) -> dict:
        path = self.file(STATE)
        if not path.exists():
            raise VaekitError(f"{path} is missing, so the run cannot be resumed; start a new run")
        import torch

        damaged = (f"{path} is damaged or not this run's, so the run cannot be continued; start a new run "
                   f"({WEIGHTS}, if present, still serves evaluate, sample and the rest)")
        try:
            state = torch.load(path, weights_only=True)  # restricted unpickler: no arbitrary code
        except Exception:  # torch's own text is many lines and advises an unsafe load: not shown
            raise VaekitError(damaged) from None
        if not isinstance(state, dict) or not STATE_KEYS <= set(state):
            raise VaekitError(damaged)
        return state

    def save_epoch(self, state: dict, row: dict) -> None:
        """An epoch's checkpoint, then its metrics line. The checkpoint carries that line, so a
        crash between the two writes loses nothing: resuming writes it back (:meth:`restore_metrics`)."""
        line = json.dumps(row) + "\n"
        self.save_state({**state, "metrics_line": line})
        path = self.file(METRICS)
        before = path.read_text() if path.exists() else ""
        atomic_write(path, lambda tmp: Path(tmp).write_text(before + line))

    def metrics(self) -> list[dict]:
        path = self.file(METRICS)
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short (a crash mid-write, an older vaekit): not an epoch
                continue
        return [r for r in rows if isinstance(r, dict) and "epoch" in r]

    def restore_metrics(self, state: dict | None) -> None:
        """The metrics lines of exactly the epochs that ``state`` (the checkpoint a run resumes
        from) holds: the file's lines before its epoch and the checkpoint's own copy of its
        epoch's line (from a checkpoint of a vaekit that kept none, the file's line)."""
        epoch = 0 if state is None else state["epoch"]
        line = None if state is None else state.get("metrics_line")
        kept = [r for r in self.metrics() if r["epoch"] < epoch or (r["epoch"] == epoch and line is None)]
        text = "".join(json.dumps(r) + "\n" for r in kept) + (line or "")
        path = self.file(METRICS)
        if (path.read_text() if path.exists() else None) != text:
            atomic_write(path, lambda tmp: Path(tmp).write_text(text))
