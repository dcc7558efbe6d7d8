"""Faults and bad input through the real command line: how many does vaekit hold?

Each case runs ``python -m vaekit ...`` in a subprocess, as a hostile or careless user
would type it, and is HELD or BROKEN:

- a bad input (expected exit 2) is held when the exit status is 2, stderr has exactly one
  line (progress lines starting with ``vaekit: data`` aside) and no traceback, and nothing
  that existed changed: the bytes of every file under the data, run and output folders
  are compared before and after, and no file or folder may appear (the content of a run's
  ``.vaekit.lock``, a process id, is left out of the comparison; its appearance is not);
- a recovery (expected exit 0, or the documented exit 2 of a diverged training) is held
  when the exit status is the expected one, there is no traceback, and the stated outcome
  is there (e.g. the resumed run's metrics.jsonl has epochs 1..N, each once).

The data is made on the spot in a temporary folder (random 8x8 uint8 images with labels
0..2, small CSV tables) and deleted at the end; no network, no ../shared. Every training
is tiny. The cases run in two lanes side by side, one per core: the data, option and
detector cases (after one detector is fitted), and the run-folder and recovery cases
(after one run is trained); each lane watches only the data and its own folders. Prints
one row per case and a count; exits 0 whatever it finds (a benchmark, not a test). About
170 s of CPU time, most of it starting Python and torch once per case.

    OMP_NUM_THREADS=1 python bench/faults.py
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

TINY = ["--epochs", "2", "--hidden-dims", "32", "--latent-dim", "4", "--batch-size", "32", "--quiet", "--no-report"]
LOCK = ".vaekit.lock"
WIDTH = 110


BUSY = socket.socket()  # a port something already listens on, for the serve case
BUSY.bind(("127.0.0.1", 0))
BUSY.listen()


@dataclass
class Case:
    name: str
    argv: list[str]                      # arguments after ``python -m vaekit``
    expect: int = 2                      # exit status that holds
    check: Callable[[str], str | None] | None = None  # given stdout + stderr: what is wrong, or None
    prepare: Callable[[], None] | None = None         # run just before (before the snapshot)
    cwd: Path | None = None              # working directory (default: the output folder)


def vaekit(argv: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "vaekit", *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, -9, "", "timed out after 120 s")


def snapshot(*folders: Path) -> dict:
    """Every file's bytes and every folder's name under these folders (a lock's content left out)."""
    seen = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_dir():
                seen[str(path)] = "dir"
            else:
                seen[str(path)] = b"" if path.name == LOCK else path.read_bytes()
    return seen


def changes(before: dict, after: dict) -> str | None:
    new = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    edited = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    for what, paths in (("new", new), ("removed", gone), ("changed", edited)):
        if paths:
            return f"{what}: {', '.join(Path(p).name for p in paths[:3])}"
    return None


def epochs_are(run: Path, n: int) -> Callable[[str], str | None]:
    def check(output: str) -> str | None:
        try:
            found = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        except (OSError, ValueError, KeyError) as e:
            return f"metrics.jsonl unreadable: {e}"
        return None if found == list(range(1, n + 1)) else f"epochs {found}, expected 1..{n}"
    return check


def varies(run: Path) -> Callable[[str], str | None]:
    """The run trained to a finite loss with every column's own spread as its scale."""
    def check(output: str) -> str | None:
        config = json.loads((run / "config.json").read_text())
        lines = (run / "metrics.jsonl").read_text().splitlines()
        if not lines or not np.isfinite(json.loads(lines[-1])["val_loss"] or np.nan):
            return "no finite validation loss"
        return None if all(s != 1.0 for s in config["data"]["std"]) else f"a column taken for a constant: {config}"
    return check


def filled(folder: Path) -> Callable[[str], str | None]:
    """The imputed CSV has no empty cell and the given cells as they were."""
    def check(output: str) -> str | None:
        text = (folder / "filled.csv").read_text()
        return "an empty or NaN cell is left" if ",," in text or "nan" in text.lower() else None
    return check


def says(text: str) -> Callable[[str], str | None]:
    return lambda output: None if text in output else f"no line saying {text!r}"


def make_data(d: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (240, 8, 8), dtype=np.uint8), rng.integers(0, 3, 240)
    np.savez(d / "images.npz", X=x, y=y)
    np.save(d / "unlabelled.npy", x)
    np.savez(d / "minus.npz", X=x, y=np.where(y == 2, -1, y))
    np.savez(d / "halves.npz", X=x, y=y + 0.5)
    np.save(d / "wide.npy", rng.integers(0, 256, (40, 10, 10), dtype=np.uint8))
    np.save(d / "channel-first.npy", rng.integers(0, 256, (240, 3, 8, 8), dtype=np.uint8))
    np.save(d / "no-features.npy", np.zeros((240, 0), np.float32))
    np.save(d / "complex.npy", x.reshape(240, -1)[:, :4].astype(np.complex64))
    np.save(d / "text.npy", np.array([["a", "b", "c", "d"]] * 240))
    np.save(d / "object.npy", np.array([[1, "b", None, 2.0]] * 240, dtype=object), allow_pickle=True)
    (d / "empty.npy").write_bytes(b"")
    table = rng.normal(5, 3, (200, 4))
    rows = "".join(",".join(f"{v:.3f}" for v in row) + "\n" for row in table)
    (d / "table.csv").write_text("a,b,c,d\n" + rows)
    (d / "table-labelled-0.csv").write_text("a,b,c,d,label\n" + rows.replace("\n", ",0\n"))
    (d / "table-wider.csv").write_text("a,b,c,d,e\n" + rows.replace("\n", ",1.0\n"))
    (d / "nan.csv").write_text("a,b,c,d\n" + rows + "1.0,nan,2.0,3.0\n1.0,,,4.0\n")
    (d / "empty-row.csv").write_text("a,b,c,d\n" + rows + ",,,\n")
    (d / "inf.csv").write_text("a,b,c,d\n" + rows + "1.0,inf,2.0,3.0\n")
    (d / "text-column.csv").write_text("a,b,c,d,city\n" + rows.replace("\n", ",Paris\n"))
    shop = "".join(f"{v:.3f},{c},{f},{z}\n" for v, c, f, z in zip(
        table[:, 0], rng.choice(["red", "green", ""], 200), rng.choice(["yes", "no"], 200), rng.choice([11, 22], 200)))
    (d / "shop.csv").write_text("v,colour,member,zip\n" + shop)
    (d / "shop-new.csv").write_text("v,colour,member,zip\n1.0,purple,maybe,33\n,red,,\n")
    (d / "twice.csv").write_text("a,a,b\n" + "1,2,3\n" * 50)
    (d / "empty-column.csv").write_text("a,b\n" + "1,\n" * 50)
    (d / "stray-text.csv").write_text("a,b\n" + "1,2\n" * 50 + "3,oops\n")
    (d / "header-only.csv").write_text("a,b,c,d\n")
    (d / "ragged.csv").write_text("a,b,c,d\n" + rows + "1.0,2.0\n" + rows)
    (d / "two-labels.csv").write_text("a,b,y,label\n1,2,0,1\n3,4,1,0\n5,6,0,0\n")
    mixed = d / "mixed"
    for cls, size in (("a", 8), ("b", 10)):
        (mixed / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(mixed / cls / f"{i}.png")
    far = 1e12 + 1e3 * rng.normal(size=(200, 4))
    (d / "far.csv").write_text("a,b,c,d\n" + "".join(",".join(f"{v:.17g}" for v in row) + "\n" for row in far))
    huge = 1e37 * (1 + 0.01 * rng.normal(size=(200, 4)))
    (d / "huge.csv").write_text("a,b,c,d\n" + "".join(",".join(f"{v:.17g}" for v in row) + "\n" for row in huge))
    (d / "beyond-float32.csv").write_text("a,b\n" + "1e39,1\n2e39,2\n3e39,3\n")
    np.save(d / "int16-images.npy", x.astype(np.int16))
    (d / "pictures").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(d / "pictures" / f"{i}.png")
    (d / "not-a-run").mkdir()
    (d / "not-a-run" / "notes.txt").write_text("my holiday plans\n")


def cases(p: SimpleNamespace) -> tuple[list[Case], list[Case]]:
    """The cases that need only the data (and a detector), and those that need the trained run."""
    d, run, det, out, s = p.data, str(p.run), str(p.detector / "det"), p.out, p.scratch
    new = ["--out", str(p.fresh / "new")]

    def train(data: str, *extra: str) -> list[str]:
        """Train on the file or folder ``data`` of the data folder, into a new run folder."""
        return ["train", "--data", str(d / data), *new, *TINY, *extra]

    def train_vqvae(data: str, *extra: str) -> list[str]:
        """The same for a VQ-VAE, which sizes its own code (no --latent-dim)."""
        return ["train", "--data", str(d / data), *new, "--model", "vqvae", "--epochs", "2", "--quiet", "--no-report",
                *extra]

    def damaged(name: str, file: str) -> Callable[[], None]:
        def prepare() -> None:
            shutil.copytree(p.run, p.runs / name)
            (p.runs / name / file).write_bytes(b"not what it should be" * 40)
        return prepare

    def killed_in_epoch_1(name: str) -> Callable[[], None]:
        def prepare() -> None:
            (s / name).mkdir()
            shutil.copy(p.run / "config.json", s / name / "config.json")
        return prepare

    def cut_metrics() -> None:
        shutil.copytree(p.run, s / "cut")
        with open(s / "cut" / "metrics.jsonl", "a") as f:
            f.write('{"epoch": 3, "train_lo')

    def relative_data() -> None:
        for name in ("here", "elsewhere"):
            (s / name).mkdir()
        shutil.copy(d / "images.npz", s / "here" / "d.npz")

    def board_lacks_epoch_2() -> None:
        """Killed after epoch 2's metrics line, before its scalars reached TensorBoard."""
        from torch.utils.tensorboard import SummaryWriter

        shutil.rmtree(s / "tb" / "tensorboard")
        with SummaryWriter(log_dir=str(s / "tb" / "tensorboard")) as writer:
            writer.add_scalar("train_loss", 1.0, 1)

    def board_steps(output: str) -> str | None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        steps = sorted(e.step for e in EventAccumulator(str(s / "tb" / "tensorboard")).Reload().Scalars("train_loss"))
        return None if steps == [1, 2, 3] else f"the board has epochs {steps}"

    def no_weights_only(output: str) -> str | None:
        return "the line mentions weights_only" if "weights_only" in output else None

    def report_written(output: str) -> str | None:
        return None if (s / "cut" / "report.html").exists() else "no report.html"

    data_cases = [
        # data
        Case("data: missing file", train("missing.npz")),
        Case("data: unknown dataset name", ["train", "--data", "mnist-6k", *new, *TINY]),
        Case("data: 0-byte .npy", train("empty.npy")),
        Case("data: .npy of text", train("text.npy")),
        Case("data: .npy of objects", train("object.npy")),
        Case("data: complex .npy", train("complex.npy")),
        Case("data: NaN and empty cells in a CSV", train("nan.csv", "--out", str(s / "gaps")), expect=0,
             check=epochs_are(s / "gaps", 2)),
        Case("data: impute the CSV's empty cells", ["impute", str(s / "gaps"), "--data", str(d / "nan.csv"),
                                                     "--out", str(s / "filled.csv")], expect=0, check=filled(s)),
        Case("data: CSV with a row of empty cells", train("empty-row.csv", "--out", str(s / "empty-row")), expect=0,
             check=epochs_are(s / "empty-row", 2)),
        Case("data: inf in a CSV", train("inf.csv")),
        # text columns are categories (issue 23); what no kind fits is still one line
        Case("data: CSV with a text column", train("text-column.csv", "--out", str(s / "text-column")), expect=0,
             check=epochs_are(s / "text-column", 2)),
        Case("data: CSV of text, yes/no, codes and gaps", train("shop.csv", "--out", str(s / "shop"),
                                                                "--column-types", "zip=categorical"),
             expect=0, check=epochs_are(s / "shop", 2)),
        Case("data: impute text, new levels as written",
             ["impute", str(s / "shop"), "--data", str(d / "shop-new.csv"), "--out", str(s / "shop-filled.csv")],
             expect=0, check=lambda _: None if (s / "shop-filled.csv").read_text().splitlines()[1] ==
             "1.0,purple,maybe,33" else "an observed cell changed"),
        Case("data: a table with text to .npy", ["impute", str(s / "shop"), "--data", str(d / "shop-new.csv"),
                                                 "--out", str(s / "shop-filled.npy")]),
        Case("data: CSV with a column named twice", train("twice.csv")),
        Case("data: CSV with an empty column", train("empty-column.csv")),
        Case("data: CSV of numbers with a stray text", train("stray-text.csv")),
        Case("data: --column-types of no column", train("shop.csv", "--column-types", "postcode=categorical")),
        Case("data: --column-types of no kind", train("shop.csv", "--column-types", "zip=ordinal")),
        Case("data: CSV with only a header", train("header-only.csv")),
        Case("data: CSV with ragged rows", train("ragged.csv")),
        Case("data: CSV with y and label columns", train("two-labels.csv")),
        Case("data: cvae on unlabelled data", train("unlabelled.npy", "--model", "cvae")),
        Case("data: cvae with a label -1", train("minus.npz", "--model", "cvae")),
        Case("data: labels 0.5, 1.5, 2.5", train("halves.npz")),
        Case("data: --image-size on an .npz", train("images.npz", "--image-size", "4")),
        Case("data: image folder of mixed sizes", train("mixed")),
        Case("data: 4-D channel-first .npy", train("channel-first.npy")),
        Case("data: table of 0 features", train("no-features.npy")),
        # options
        Case("option: --epochs 0", train("images.npz", "--epochs", "0")),
        Case("option: --epochs x", train("images.npz", "--epochs", "x")),
        Case("option: --lr -1", train("images.npz", "--lr", "-1")),
        Case("option: --latent-dim 0", train("images.npz", "--latent-dim", "0")),
        Case("option: --val-fraction 1.5", train("images.npz", "--val-fraction", "1.5")),
        Case("option: --noise gaussian:abc", train("images.npz", "--noise", "gaussian:abc")),
        Case("option: --model nosuch", train("images.npz", "--model", "nosuch")),
        Case("option: --beta 2 --model ae", train("images.npz", "--beta", "2", "--model", "ae")),
        Case("option: --free-bits 1 --model iwae", train("images.npz", "--free-bits", "1", "--model", "iwae")),
        Case("option: unknown --bogus 3", train("images.npz", "--bogus", "3")),
        Case("option: --memory-budget lots", train("images.npz", "--memory-budget", "lots")),
        Case("option: --binarize fixed outside [0, 1]", train("table.csv", "--binarize", "fixed")),
        Case("option: --seed 2**70", train("images.npz", "--seed", str(2 ** 70))),
        Case("option: --noise salt-pepper:nan", train("images.npz", "--noise", "salt-pepper:nan")),
        Case("option: --noise gaussian:inf", train("images.npz", "--noise", "gaussian:inf")),
        Case("option: --model vqvae on a table", train_vqvae("table.csv")),
        Case("option: --model vqvae --latent-dim 8", train_vqvae("images.npz", "--latent-dim", "8")),
        Case("option: --model vqvae --arch mlp", train_vqvae("images.npz", "--arch", "mlp")),
        Case("option: --prior autoregressive --model vae", train("images.npz", "--prior", "autoregressive")),
        # values float32 cannot carry
        Case("data: CSV of 1e12 plus noise of 1e3", train("far.csv", "--out", str(s / "far")), expect=0,
             check=varies(s / "far")),
        Case("data: CSV of values near 1e37", train("huge.csv", "--out", str(s / "huge")), expect=0,
             check=varies(s / "huge")),
        Case("data: 1e39 with --no-standardize", train("beyond-float32.csv", "--no-standardize")),
        Case("data: int16 images holding 0-255", train("int16-images.npy")),
        Case("detect: fit on values near 1e37", ["detect", "fit", "--data", str(d / "huge.csv"), "--out",
                                                 str(s / "det-huge"), "--epochs", "2", "--quiet"], expect=0),
        # memory: estimated before anything is allocated
        Case("memory: --hidden-dims 100000000", train("images.npz", "--hidden-dims", "100000000")),
        Case("memory: --model iwae --k 100000000", train("images.npz", "--model", "iwae", "--k", "100000000")),
        Case("memory: --image-size 3000x3000", train("pictures", "--image-size", "3000x3000", "--hidden-dims", "512")),
        Case("memory: vqvae prior over a 500x500 grid", train_vqvae("pictures", "--image-size", "2000x2000",
                                                                   "--batch-size", "1")),
        Case("memory: --arch conv --hidden-dims 100000,100000", train("images.npz", "--arch", "conv",
                                                                       "--hidden-dims", "100000,100000")),
        Case("memory: --batch-size 10000000 on 240 rows", train("images.npz", "--batch-size", "10000000", "--out",
                                                                str(s / "full-batch")),
             expect=0, check=epochs_are(s / "full-batch", 2)),
        # anomaly detection
        Case("detect: fit on a CSV with empty cells", ["detect", "fit", "--data", str(d / "nan.csv"), "--out",
                                                       str(s / "det-gaps"), "--epochs", "2", "--quiet"], expect=0),
        Case("detect: score data of another width", ["detect", "score", det, "--data", str(d / "table-wider.csv"),
                                                     "--out", str(p.fresh / "scores.csv")]),
        Case("detect: score with labels all 0", ["detect", "score", det, "--data", str(d / "table-labelled-0.csv"),
                                                 "--out", str(s / "scores.csv")],
             expect=0, check=says("left out")),
    ]
    run_cases = [
        # run folders
        Case("run: evaluate a missing folder", ["evaluate", str(out / "nowhere")]),
        Case("run: sample a missing folder", ["sample", str(out / "nowhere"), "--out", str(out / "s.png")]),
        Case("run: report a missing folder", ["report", str(out / "nowhere")]),
        Case("run: evaluate a folder not a run", ["evaluate", str(d / "not-a-run")]),
        Case("run: sample a folder not a run", ["sample", str(d / "not-a-run"), "--out", str(out / "s.png")]),
        Case("run: report a folder not a run", ["report", str(d / "not-a-run")]),
        Case("run: damaged model.safetensors", ["evaluate", str(p.runs / "bad-model")],
             prepare=damaged("bad-model", "model.safetensors")),
        Case("run: damaged training_state.pt --resume", ["train", "--resume", str(p.runs / "bad-state"),
                                                         "--epochs", "3", "--quiet"],
             check=no_weights_only, prepare=damaged("bad-state", "training_state.pt")),
        Case("run: --resume with a smaller --epochs", ["train", "--resume", run, "--epochs", "1", "--quiet"]),
        Case("run: --resume --device cuda, no GPU", ["train", "--resume", run, "--epochs", "5", "--device", "cuda",
                                                     "--quiet"]),
        Case("run: --resume with --out", ["train", "--resume", run, *new, "--quiet"]),
        Case("run: train --out onto a finished run", ["train", "--data", str(d / "images.npz"), "--out", run,
                                                      *TINY]),
        Case("run: sample --label, not conditional", ["sample", run, "--label", "1", "--out", str(out / "s.npy")]),
        Case("run: sample --out s.txt", ["sample", run, "--out", str(out / "s.txt")]),
        Case("run: sample --temperature inf", ["sample", run, "--temperature", "inf", "--out", str(out / "s.npy")]),
        Case("run: sample --prior flow, none fitted", ["sample", run, "--prior", "flow", "--out", str(out / "s.npy")]),
        Case("run: sample --prior autoregressive, a VAE", ["sample", run, "--prior", "autoregressive", "--out",
                                                             str(out / "s.npy")]),
        Case("serve: --port 70000", ["serve", run, "--port", "70000"]),
        Case("serve: --max-wait-ms inf", ["serve", run, "--max-wait-ms", "inf"]),
        Case("serve: --max-wait-ms nan", ["serve", run, "--max-wait-ms", "nan"]),
        Case("serve: --request-timeout 0", ["serve", run, "--request-timeout", "0"]),
        Case("serve: a port already in use", ["serve", run, "--port", str(BUSY.getsockname()[1])]),
        Case("run: sample --n 20000 --out s.png", ["sample", run, "--n", "20000", "--out", str(out / "s.png")]),
        Case("run: sample --seed 2**64", ["sample", run, "--seed", str(2 ** 64), "--out", str(out / "s.npy")]),
        Case("run: evaluate --seed -1", ["evaluate", run, "--seed", "-1"]),
        Case("run: evaluate --samples 3", ["evaluate", run, "--samples", "3"]),
        Case("run: evaluate --prior without --samples", ["evaluate", run, "--prior", "normal"]),
        Case("run: interpolate --to 9999", ["interpolate", run, "--data", str(d / "images.npz"), "--from", "0",
                                            "--to", "9999", "--out", str(out / "p.npy")]),
        Case("run: latent --max-points 0", ["latent", run, "--max-points", "0", "--out", str(out / "m.png")]),
        Case("run: reconstruct 10x10 data with 8x8 run", ["reconstruct", run, "--data", str(d / "wide.npy"),
                                                          "--out", str(out / "r.npy")]),
        # recoveries
        Case("recover: killed in epoch 1, train --out", ["train", "--data", str(d / "images.npz"),
                                                         "--out", str(s / "killed-a"), *TINY],
             expect=0, check=epochs_are(s / "killed-a", 2), prepare=killed_in_epoch_1("killed-a")),
        Case("recover: killed in epoch 1, --resume", ["train", "--resume", str(s / "killed-b"), "--quiet",
                                                      "--no-report"],
             expect=0, check=epochs_are(s / "killed-b", 2), prepare=killed_in_epoch_1("killed-b")),
        Case("recover: cut metrics line, info", ["info", str(s / "cut")], expect=0, prepare=cut_metrics),
        Case("recover: cut metrics line, report", ["report", str(s / "cut")], expect=0, check=report_written),
        Case("recover: cut metrics line, --resume", ["train", "--resume", str(s / "cut"), "--epochs", "3",
                                                     "--quiet", "--no-report"],
             expect=0, check=epochs_are(s / "cut", 3)),
        Case("recover: train --tensorboard", ["train", "--data", str(d / "images.npz"), "--out", str(s / "tb"),
                                              *TINY, "--tensorboard"], expect=0, check=epochs_are(s / "tb", 2)),
        Case("recover: --resume logs epochs the board lacks", ["train", "--resume", str(s / "tb"), "--epochs", "3",
                                                               "--quiet", "--no-report"],
             expect=0, check=board_steps, prepare=board_lacks_epoch_2),
        Case("recover: relative --data, train", ["train", "--data", "d.npz", "--out", "R", *TINY],
             expect=0, prepare=relative_data, cwd=s / "here"),
        Case("recover: relative --data, evaluate elsewhere", ["evaluate", str(s / "here" / "R")],
             expect=0, check=says("neg_elbo"), cwd=s / "elsewhere"),
        Case("recover: --lr 1e6 diverges", ["train", "--data", str(d / "images.npz"), "--out", str(s / "div"),
                                            *TINY, "--epochs", "3", "--lr", "1e6"],
             check=says("diverged")),
        Case("recover: train --out into the diverged folder", ["train", "--data", str(d / "images.npz"),
                                                               "--out", str(s / "div"), *TINY],
             expect=0, check=epochs_are(s / "div", 2)),
    ]
    return data_cases, run_cases


def judge(case: Case, result: subprocess.CompletedProcess, before: dict, after: dict) -> str | None:
    """What is wrong, or None when the case held."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("vaekit: data")]
    if "Traceback" in result.stderr:
        return f"a traceback: {result.stderr.strip().splitlines()[-1][:WIDTH]}"
    if result.returncode != case.expect:
        return f"exit {result.returncode}, expected {case.expect}"
    if case.expect == 2 and len(lines) != 1:
        return f"{len(lines)} lines on stderr"
    if case.check and (problem := case.check(result.stdout + result.stderr)):
        return problem
    if case.expect == 2:
        return changes(before, after)
    return None


def run_lane(setup: list[str], lane: list[Case], watched: list[Path], out: Path, env: dict) -> list[tuple]:
    """Train what the cases share, then run them one after another: (case, result, problem) each."""
    done = vaekit(setup, out, env)
    if done.returncode != 0:
        return [(case, done, f"setup failed: vaekit {' '.join(setup[:2])}") for case in lane]
    rows = []
    for case in lane:
        if case.prepare:
            case.prepare()
        before = snapshot(*watched)
        result = vaekit(case.argv, case.cwd or out, env)
        rows.append((case, result, judge(case, result, before, snapshot(*watched))))
    return rows


def _http(port: int, request: bytes, timeout: float = 30.0) -> tuple[int, str]:
    """The status and the body of the server's answer to ``request`` sent as it is (0: none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request)
        except OSError:  # the server answered and closed before all was sent
            pass
        answer = b""
        try:
            while chunk := s.recv(1 << 16):
                answer += chunk
        except OSError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, body.decode(errors="replace")


def server_rows(run: Path, env: dict) -> list[tuple]:
    """Hostile requests against ``vaekit serve RUN`` on loopback (a request timeout of 2 s): each
    must be a 4xx with one JSON error line, the server still up; stalled clients cut off; SIGTERM
    obeyed."""
    import signal

    port = BUSY.getsockname()[1] + 1
    while True:
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
            break
        except OSError:
            port += 1
    server = subprocess.Popen([sys.executable, "-m", "vaekit", "serve", str(run), "--port", str(port),
                               "--request-timeout", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
    health = b"GET /health HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"
    for _ in range(300):
        try:
            if _http(port, health)[0] == 200:
                break
        except OSError:
            time.sleep(0.1)

    def post(path: str, body: bytes) -> bytes:
        return (b"POST %s HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % (path.encode(), len(body)) + body)

    chunk = b"0," * (1 << 19)
    chunked = (b"POST /encode HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
               b"\r\n\r\n" + b"%x\r\n" % (len(chunk) + 12) + b'{"inputs": [' + chunk + b"\r\n"
               + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 17)
    deep = b"[" * 1100 + b"]" * 1100
    requests = [("server: chunked body of 18 MB", chunked, 413),
                ("server: a 401-digit number in inputs", post("/encode", b'{"inputs": [[1' + b"0" * 400 + b"]]}"), 422),
                ("server: arrays nested 1,100 deep", post("/encode", b'{"inputs": ' + deep + b"}"), 422),
                ("server: /decode nested 1,100 deep", post("/decode", b'{"codes": ' + deep + b"}"), 400),
                ("server: /sample?seed=2**64", b"GET /sample?seed=%d HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"
                 % 2 ** 64, 422)]
    rows = []
    for name, request, expect in requests:
        status, body = _http(port, request)
        problem = None
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            error, problem = body[:80], "no JSON error"
        if status != expect:
            problem = f"HTTP {status}, expected {expect}"
        elif "\n" in error.strip():
            problem = "more than one line"
        rows.append((Case(name, [], expect), subprocess.CompletedProcess([], status, "", error), problem))
    stalled = []
    for part in (b"POST /encode HTTP/1.1\r\nHost: f\r\nContent-Le",
                 b"POST /encode HTTP/1.1\r\nHost: f\r\nContent-Length: 100\r\n\r\n{\"inputs\": [["):
        for _ in range(10):
            c = socket.create_connection(("127.0.0.1", port), timeout=20)
            c.sendall(part)
            stalled.append(c)
    start, cut = time.monotonic(), 0
    for c in stalled:
        with c:
            try:
                cut += c.recv(100) == b""
            except ConnectionResetError:
                cut += 1
            except OSError:
                pass
    took = time.monotonic() - start
    alive = _http(port, health)[0] == 200
    rows.append((Case("server: 20 clients stalled mid-request", [], 0),
                 subprocess.CompletedProcess([], 0, "", f"{cut} of 20 cut off in {took:.1f} s, server up: {alive}"),
                 None if cut == 20 and took < 10 and alive else "stalled clients kept"))
    start = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
        problem = "a traceback" if "Traceback" in server.stderr.read() else None
    except subprocess.TimeoutExpired:
        server.kill()
        problem = "still up 15 s after SIGTERM"
    rows.append((Case("server: SIGTERM", [], 0), subprocess.CompletedProcess(
        [], 0, "", f"stopped in {time.monotonic() - start:.1f} s"), problem))
    return rows


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vaekit-faults-") as tmp:
        root = Path(tmp)
        p = SimpleNamespace(data=root / "data", fresh=root / "fresh", detector=root / "detector", runs=root / "runs",
                            out=root / "out", scratch=root / "scratch")
        for folder in vars(p).values():
            folder.mkdir()
        p.run = p.runs / "vae"
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "VAEKIT_CACHE": str(root / "cache")}
        make_data(p.data)
        data_cases, run_cases = cases(p)
        # two lanes side by side (one per core), each watching only its own folders and the data
        with ThreadPoolExecutor(2) as pool:
            lanes = [pool.submit(run_lane, ["detect", "fit", "--data", str(p.data / "table.csv"), "--out",
                                            str(p.detector / "det"), "--epochs", "2", "--quiet"],
                                 data_cases, [p.data, p.detector, p.fresh], p.fresh, env),
                     pool.submit(run_lane, ["train", "--data", str(p.data / "images.npz"), "--out", str(p.run), *TINY],
                                 run_cases, [p.data, p.runs, p.out], p.out, env)]
            rows = [row for lane in lanes for row in lane.result()]
        rows += server_rows(p.run, env)
    print(f"{'case':46} {'':6} {'exit':>4}  first line on stderr")
    for case, result, problem in rows:
        first = next((line for line in result.stderr.splitlines()
                      if line.strip() and not line.startswith("vaekit: data")), "-")
        if len(first) > WIDTH:
            first = first[:WIDTH - 3] + "..."
        print(f"{case.name:46} {'HELD' if problem is None else 'BROKEN':6} {result.returncode:4}  {first}"
              + (f"  [{problem}]" if problem else ""))
    held = sum(problem is None for _, _, problem in rows)
    print(f"faults: {len(rows)} cases tried, {held} held ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
