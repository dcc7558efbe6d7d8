"""Data larger than memory: sources read rows on demand, training streams data past the memory
budget (and says so), every sample is seen once per epoch in bounded windows, and encoding
and scoring write their outputs chunk by chunk in input order."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vaekit
from helpers import TINY, make_blobs
from vaekit import VaekitError
from vaekit.cli import main
from vaekit.data import LazyDataset, load_dataset, open_dataset, open_lazy, parse_size
from vaekit.data.lazy import Loading
from vaekit.data.parquet import write_parquet


@pytest.fixture
def blobs_npy(tmp_path, blobs):
    path = tmp_path / "blobs.npy"
    np.save(path, blobs[0])
    return path


@pytest.mark.slow
def test_a_npy_past_the_budget_is_streamed_and_trains_like_in_memory(tmp_path, blobs_npy, capsys):
    opts = {**TINY, "epochs": 8, "lr": 3e-3, "progress": True}
    streamed = vaekit.train(str(blobs_npy), out=tmp_path / "s", memory_budget=4096, **opts)
    assert "vaekit: data streamed: 15.0K of data exceeds the 4.0K memory budget" in capsys.readouterr().err
    in_memory = vaekit.train(str(blobs_npy), out=tmp_path / "m", **opts)
    config = json.loads((tmp_path / "s" / "config.json").read_text())["data"]
    assert config["storage"] == "stream" and "exceeds the 4.0K memory budget" in config["storage_reason"]
    assert in_memory.config.data.storage == "memory"
    s, m = streamed.metrics(), in_memory.metrics()
    assert s[-1]["train_loss"] < 0.8 * s[0]["train_loss"]
    # the same data and split, read in another order: about as good a model
    assert s[-1]["val_loss"] == pytest.approx(m[-1]["val_loss"], rel=0.2)
    # a run that streamed evaluates and reports without loading its data whole
    assert isinstance(streamed.dataset(), LazyDataset)
    assert streamed.evaluate()["n"] == in_memory.evaluate()["n"] == 24
    resumed = vaekit.train(resume=tmp_path / "s", epochs=9, progress=False, memory_budget=4096, report=False)
    assert resumed.metrics()[-1]["epoch"] == 9


def test_streamed_epochs_see_every_sample_once_in_windows_of_the_budget(blobs_npy):
    data = open_lazy(str(blobs_npy))
    loading = Loading(batch_size=10, budget=3000, workers=0)
    window = data.window_rows(loading)
    assert window == 20 and 2 * window * 64 <= 3000  # two windows of 8x8 bytes in flight fit the budget
    seen = []
    taken = []
    original = data.source.take
    data.source.take = lambda rows: taken.append(len(rows)) or original(rows)
    order = data.epoch_order(torch.Generator().manual_seed(0), loading)
    for x, _, _n in data.local_batches(order, loading, torch.device("cpu")):
        seen.append(x)
    assert max(taken) <= window  # never more than a window read at once
    everything = torch.cat(seen)
    assert everything.shape == (240, 1, 8, 8)
    assert torch.equal(everything, data.batch(order))  # in the epoch's order, every sample once
    assert not torch.equal(order, torch.arange(240))
    # two ranks split each global batch: together they see what one process sees
    ranks = [[x for x, _, _ in data.local_batches(order, Loading(10, rank=r, world_size=2, budget=3000),
                                                  torch.device("cpu"))] for r in (0, 1)]
    assert all(len(a) == len(b) == 5 for a, b in zip(*ranks))
    assert torch.equal(torch.cat([torch.cat([a, b]) for a, b in zip(*ranks)]), everything)


def test_worker_processes_read_the_windows_in_order(blobs_npy):
    data = open_lazy(str(blobs_npy))
    loading = Loading(batch_size=16, budget=4000, workers=2)
    order = data.epoch_order(torch.Generator().manual_seed(3), loading)
    got = torch.cat([x for x, _, _ in data.local_batches(order, loading, torch.device("cpu"))])
    assert torch.equal(got, data.batch(order))


def test_lazy_split_and_statistics_match_the_in_memory_ones(tmp_path):
    x = np.random.default_rng(0).normal(3, 2, size=(1000, 5)).astype(np.float32)
    np.save(tmp_path / "t.npy", x)
    lazy, full = open_lazy(str(tmp_path / "t.npy")), load_dataset(str(tmp_path / "t.npy"))
    (lt, lv), (ft, fv) = lazy.split(0.2, seed=4), full.split(0.2, seed=4)
    assert sorted(lv.batch()[:, 0].tolist()) == sorted(fv.x[:, 0].tolist())  # the same rows
    mean, std = lt.feature_stats()
    fmean, fstd = ft.feature_stats()
    np.testing.assert_allclose(mean, fmean, rtol=1e-5)
    np.testing.assert_allclose(std, fstd, rtol=1e-5)
    assert lazy.value_range() == full.value_range()


def test_parquet_files_and_folders_are_tables_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)).astype(np.float32)
    y = rng.integers(0, 3, 500)
    (tmp_path / "parts").mkdir()
    write_parquet(tmp_path / "parts" / "a.parquet", x[:300], list("abcd"), y[:300], row_group_rows=64)
    write_parquet(tmp_path / "parts" / "b.parquet", x[300:], list("abcd"), y[300:], row_group_rows=64)
    data = open_lazy(str(tmp_path / "parts"))
    assert len(data) == 500 and data.columns == tuple("abcd") and data.kind == "tabular"
    assert torch.equal(data.y, torch.from_numpy(y))
    rows = np.array([0, 63, 64, 299, 300, 301, 499])
    np.testing.assert_array_equal(data.batch(rows).numpy(), x[rows])
    np.testing.assert_array_equal(data.batch(slice(250, 350)).numpy(), x[250:350])  # across a file boundary
    whole = load_dataset(str(tmp_path / "parts"))
    np.testing.assert_array_equal(whole.x.numpy(), x)

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0, 2.0], "city": ["x", None]}), tmp_path / "text.parquet")
    text = open_lazy(str(tmp_path / "text.parquet"))  # a text column: categories, the null a missing cell
    assert text.schema.names == ["a", "city"] and text.schema.columns[1].levels == ("x",)
    np.testing.assert_array_equal(text.batch(slice(0, 2)).numpy(), [[1, 1, 0], [2, np.nan, np.nan]])
    pq.write_table(pa.table({"a": [1.0, None]}), tmp_path / "nan.parquet")  # a null: a missing cell
    assert torch.isnan(load_dataset(str(tmp_path / "nan.parquet")).x[1, 0])


def test_parquet_from_pandas_damaged_files_and_mixed_folders(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # df.to_parquet() keeps the index as a column; it is row numbers, not a feature
    table = pa.table({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0], "__index_level_0__": [7, 8, 9]})
    meta = {b"pandas": json.dumps({"index_columns": ["__index_level_0__"], "columns": []}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "df.parquet")
    data = open_lazy(str(tmp_path / "df.parquet"))
    assert data.columns == ("a", "b") and data.batch().tolist() == [[1, 4], [2, 5], [3, 6]]

    (tmp_path / "mixed").mkdir()
    pq.write_table(pa.table({"a": [1.0]}), tmp_path / "mixed" / "1.parquet")
    pq.write_table(pa.table({"a": ["s"]}), tmp_path / "mixed" / "2.parquet")
    with pytest.raises(VaekitError, match="2.parquet: column\\(s\\) 'a' hold text, where .*1.parquet holds numbers"):
        open_lazy(str(tmp_path / "mixed"))

    x = np.random.default_rng(0).normal(size=(4000, 3)).astype(np.float32)
    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1]}), tmp_path / "ok.parquet", row_group_size=1000,
                   compression="gzip")
    raw = bytearray((tmp_path / "ok.parquet").read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 64] = b"\xff" * 64  # damage a row group in the middle
    (tmp_path / "bad.parquet").write_bytes(bytes(raw))
    with pytest.raises(VaekitError, match="bad.parquet: row group \\d+ cannot be read .*write it again"):
        load_dataset(str(tmp_path / "bad.parquet"))


def test_label_names_are_not_anomaly_marks(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    names = np.where(np.arange(300) % 10 == 0, "anomaly", "normal")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": names}), tmp_path / "named.parquet")
    vaekit.AnomalyDetector(epochs=2, random_state=0).fit(x).save(tmp_path / "det")
    assert main(["detect", "score", str(tmp_path / "det"), "--data", str(tmp_path / "named.parquet"), "--out",
                 str(tmp_path / "s.csv"), "--json"]) == 0
    out = capsys.readouterr()
    assert "auroc" not in json.loads(out.out)  # "anomaly" < "normal": sorted, the names would read backwards
    assert "labels are names (anomaly, normal), not 0/1 anomaly marks" in out.err


def test_wide_rows_are_read_in_smaller_chunks(tmp_path, monkeypatch):
    import vaekit.data.lazy as lazy

    np.save(tmp_path / "wide.npy", np.zeros((100, 1000), np.float32))
    monkeypatch.setattr(lazy, "CHUNK_BYTES", 40_000)  # ten rows of 4,000 bytes (float32 is read as float32)
    assert [len(x) for _, x in open_lazy(str(tmp_path / "wide.npy")).chunks()] == [10] * 10


def test_an_image_folder_is_decoded_on_demand(tmp_path):
    from PIL import Image

    x, y = make_blobs(30)
    for i, (image, label) in enumerate(zip(x, y)):
        (tmp_path / "imgs" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "imgs" / str(label) / f"{i:03d}.png")
    lazy, (full, _) = open_lazy(str(tmp_path / "imgs")), open_dataset(str(tmp_path / "imgs"), None, 1 << 30)
    assert torch.equal(lazy.batch(), full.batch()) and torch.equal(lazy.y, full.y)
    streamed, reason = open_dataset(str(tmp_path / "imgs"), None, 100)
    assert isinstance(streamed, LazyDataset) and reason.startswith("streamed")


def test_encode_reconstruct_and_score_write_chunk_by_chunk_in_input_order(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9000, 4)).astype(np.float32)  # more rows than one chunk
    np.save(tmp_path / "x.npy", x)
    write_parquet(tmp_path / "x.parquet", x, list("abcd"), (rng.random(9000) < 0.1).astype(int), 1000)
    run = vaekit.train(x[:2000], out=tmp_path / "run", **TINY)
    for suffix in (".npy", ".csv", ".parquet"):
        assert main(["encode", str(tmp_path / "run"), "--data", str(tmp_path / "x.npy"), "--out",
                     str(tmp_path / f"z{suffix}")]) == 0
    expected = run.encode(x)
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1), expected, rtol=1e-4,
                               atol=1e-5)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "z.parquet")
    assert table.column_names == ["z0", "z1", "z2", "z3"]
    np.testing.assert_allclose(np.column_stack(list(table.to_pydict().values())), expected, rtol=1e-5, atol=1e-6)

    assert main(["reconstruct", str(tmp_path / "run"), "--data", str(tmp_path / "x.parquet"), "--out",
                 str(tmp_path / "r.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"), run.reconstruct(x), rtol=1e-4, atol=1e-4)

    det = vaekit.AnomalyDetector(epochs=3, random_state=0).fit(x[:2000])
    det.save(tmp_path / "det")
    assert main(["detect", "score", str(tmp_path / "det"), "--data", str(tmp_path / "x.parquet"), "--out",
                 str(tmp_path / "s.parquet")]) == 0
    scores = pq.read_table(tmp_path / "s.parquet").to_pydict()
    np.testing.assert_allclose(scores["score"], det.decision_function(x), rtol=1e-6)
    assert scores["label"] == (det.decision_function(x) > det.threshold_).astype(int).tolist()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary files left


def test_memory_budget_sizes_and_bad_values(tmp_path, blobs_npz, blobs_npy):
    assert parse_size("512M") == 512 << 20 and parse_size("2G") == 2 << 30 and parse_size("1.5GB") == 3 << 29
    assert parse_size(1000) == 1000
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(VaekitError, match="memory_budget must be a size"):
            parse_size(bad)
    assert main(["train", "--data", str(blobs_npz), "--memory-budget", "lots", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()
    with pytest.raises(VaekitError, match="binarize='fixed' needs the data in memory"):
        vaekit.train(str(blobs_npy), out=tmp_path / "b", binarize="fixed", memory_budget=100, **TINY)
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_killed_worker_stops_training_with_one_line_and_the_run_resumes(tmp_path):
    import subprocess
    import sys
    import time

    import psutil

    np.save(tmp_path / "big.npy", (np.random.default_rng(0).random((20000, 16, 16)) * 255).astype(np.uint8))
    cmd = [sys.executable, "-m", "vaekit", "train", "--data", str(tmp_path / "big.npy"), "--memory-budget", "256K",
           "--workers", "1", "--epochs", "1000", "--hidden-dims", "16", "--latent-dim", "2", "--out",
           str(tmp_path / "run"), "--no-report"]
    job = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "run" / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        while job.poll() is None and time.monotonic() < deadline:
            # a worker lives for one epoch; one killed just as it finished its last window is not
            # missed by anybody, so kill the next one too
            try:
                for worker in psutil.Process(job.pid).children():
                    worker.kill()
            except psutil.NoSuchProcess:  # the job ended meanwhile
                break
            time.sleep(1)
        _, stderr = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode == 2
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("vaekit train: error: a data-loading worker stopped")
    assert f"--resume {tmp_path / 'run'}" in errors[0]
    done = vaekit.load(tmp_path / "run").metrics()[-1]["epoch"]
    resumed = vaekit.train(resume=tmp_path / "run", epochs=done + 1, progress=False, report=False)
    assert resumed.metrics()[-1]["epoch"] == done + 1
