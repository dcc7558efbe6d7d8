"""The HTML report: written for every kind of run, self-contained, with its sections."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

import vaekit
from helpers import TINY as NO_REPORT
from helpers import make_blobs
from vaekit.cli import main

TINY = {**NO_REPORT, "report": True}


class Outline(HTMLParser):
    """Collects section titles and image sources, and checks that tags nest."""

    def __init__(self):
        super().__init__()
        self.stack, self.headings, self.images, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        if tag not in ("img", "meta", "br"):
            self.stack.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes nothing open"
        self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)


def outline(path) -> Outline:
    text = path.read_text()
    assert not re.search(r"(src|href)=\"https?://", text), "the report must not load anything from the network"
    parser = Outline()
    parser.feed(text)
    assert parser.stack == [], "unclosed tags"
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    return parser


def test_vae_run_report_has_every_section(tmp_path, blobs_npz):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "vae", **{**TINY, "latent_dim": 2})
    page = outline(run.path / "report.html")
    for section in ("Run", "Loss curves", "KL per latent dimension", "Reconstructions", "Samples from the prior (gmm)",
                    "Interpolation", "Latent space", "Config"):
        assert section in page.headings
    assert any(h.startswith("Metrics on") for h in page.headings)
    assert len(page.images) >= 6
    # pictures large enough to see: 8x8 images drawn at least 84 pixels high, 8 across
    import base64
    import io

    from PIL import Image

    widths = [Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size[0] for src in page.images]
    assert max(widths) >= 8 * 84
    # the config as tables, one per part, not raw JSON
    text = (run.path / "report.html").read_text()
    assert "<pre>" not in text and "<th>latent_dim</th><td>2</td>" in text
    assert all(f"<h3>{part}</h3>" in text for part in ("Model", "Data", "Training"))


def test_report_measures_the_samples_against_held_out_images(tmp_path):
    x, y = make_blobs(n=600)
    np.savez(tmp_path / "blobs.npz", X=x, y=y)
    run = vaekit.train(str(tmp_path / "blobs.npz"), out=tmp_path / "r", **{**TINY,
                                                                          "val_fraction": 0.4})
    text = (run.path / "report.html").read_text()
    caption = re.search(r"240 samples against 240 held-out images: FID ([0-9.]+), precision ([0-9.]+), recall "
                        r"([0-9.]+) \(real images against real: ([0-9.]+)", text)
    assert caption, text
    fid, floor = float(caption[1]), float(caption[4])
    assert fid > floor > 0


def test_ae_denoising_and_tabular_reports(tmp_path, blobs_npz):
    dae = vaekit.train(str(blobs_npz), out=tmp_path / "dae", model="ae", noise="gaussian:0.3", **TINY)
    page = outline(dae.path / "report.html")
    assert "Denoising" in page.headings and "Samples from the prior" not in page.headings

    table = tmp_path / "t.csv"
    rows = np.random.default_rng(0).normal(size=(120, 4))
    table.write_text("a,b,c,d\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in rows) + "\n")
    tab = vaekit.train(str(table), out=tmp_path / "tab", **TINY)
    page = outline(tab.path / "report.html")
    assert "Reconstruction error per feature" in page.headings and "Reconstructions" not in page.headings


@pytest.mark.slow  # seconds: a run, a detector and three reports
def test_report_command_and_detector_report(tmp_path, blobs_npz):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "run", **TINY)
    (run.path / "report.html").unlink()
    assert main(["report", str(run.path)]) == 0
    assert outline(run.path / "report.html").headings

    x = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    np.save(tmp_path / "train.npy", x[:200])
    np.savez(tmp_path / "new.npz", X=np.concatenate([x[200:], x[:20] + 6]), y=np.r_[np.zeros(100), np.ones(20)])
    assert main(["detect", "fit", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "det"),
                 "--epochs", "20", "--quiet"]) == 0
    assert "Training scores" in outline(tmp_path / "det" / "report.html").headings
    assert main(["report", str(tmp_path / "det"), "--data", str(tmp_path / "new.npz")]) == 0
    page = outline(tmp_path / "det" / "report.html")
    assert "ROC and precision-recall" in page.headings and "Most anomalous rows" in page.headings


def test_image_detector_report_shows_the_worst_inputs(tmp_path, blobs):
    x, y = blobs
    np.save(tmp_path / "train.npy", x[y == 0])
    np.savez(tmp_path / "new.npz", X=x, y=(y != 0).astype(int))  # 0/1: 1 marks an anomaly
    assert main(["detect", "fit", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "det"),
                 "--epochs", "5", "--quiet"]) == 0
    assert main(["report", str(tmp_path / "det"), "--data", str(tmp_path / "new.npz")]) == 0
    assert "Most anomalous inputs" in outline(tmp_path / "det" / "report.html").headings


def test_tensorboard_logs_scalars_and_pictures(tmp_path, blobs_npz):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = vaekit.train(str(blobs_npz), out=tmp_path / "run", tensorboard=True, **NO_REPORT)
    events = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Scalars("train_loss")] == [1, 2, 3]
    assert {"val_loss", "kl"} <= set(events.Tags()["scalars"])
    assert {"reconstructions", "samples"} <= set(events.Tags()["images"])


def test_a_resumed_run_logs_the_epochs_its_board_lacks_once(tmp_path, blobs_npz):
    pytest.importorskip("tensorboard")
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    run = vaekit.train(str(blobs_npz), out=tmp_path / "run", tensorboard=True, **{**NO_REPORT, "epochs": 2})
    # killed after epoch 2's metrics line, before its scalars reached the board
    board = run.path / "tensorboard"
    shutil.rmtree(board)
    with SummaryWriter(log_dir=str(board)) as writer:
        writer.add_scalar("train_loss", run.metrics()[0]["train_loss"], 1)
    vaekit.train(resume=run.path, epochs=3, progress=False)
    events = EventAccumulator(str(board)).Reload()
    assert sorted(e.step for e in events.Scalars("train_loss")) == [1, 2, 3]
    assert [e.step for e in events.Scalars("val_loss")] == [2, 3]
