"""Data specs: every loader on tiny files written here, and a clear error for each bad input."""
from __future__ import annotations

import gzip
import io
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit import VaekitError
from vaekit.data import bundled, load_dataset, parse_image_size
from vaekit.data.bundled import read_cifar_binary
from vaekit.data.dataset import to_layout


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, x, y, prefix="train", gz=True):
    folder.mkdir(exist_ok=True)
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    with opener(folder / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(idx_bytes(x))
    with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(idx_bytes(y))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_gz_and_raw(tmp_path, blobs, gz):
    x, y = blobs
    write_idx_folder(tmp_path / "idx", x, y, gz=gz)
    ds = load_dataset(str(tmp_path / "idx"))
    assert ds.x.dtype.is_floating_point is False  # uint8 stays uint8 in memory
    assert ds.sample_shape == (1, 8, 8) and ds.layout == "gray"
    np.testing.assert_array_equal(ds.x[:, 0].numpy(), x)
    np.testing.assert_array_equal(ds.y.numpy(), y)
    batch = ds.batch(slice(0, 4))
    assert batch.dtype.is_floating_point and float(batch.max()) <= 1.0


def test_idx_folder_picks_train_then_test_on_request(tmp_path, blobs):
    x, y = blobs
    write_idx_folder(tmp_path / "idx", x[:100], y[:100], prefix="train")
    write_idx_folder(tmp_path / "idx", x[100:130], y[100:130], prefix="t10k")
    assert len(load_dataset(str(tmp_path / "idx"))) == 100
    assert len(load_dataset(f"{tmp_path / 'idx'}:test")) == 30


def test_truncated_idx_file_is_a_clear_error(tmp_path, blobs):
    folder = tmp_path / "idx"
    write_idx_folder(folder, *blobs, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(VaekitError, match="truncated or corrupt"):
        load_dataset(str(folder))


def test_npy_npz_and_channel_last_layouts(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.random((10, 6, 5, 3)).astype(np.float32)
    np.save(tmp_path / "rgb.npy", rgb)
    ds = load_dataset(str(tmp_path / "rgb.npy"))
    assert ds.sample_shape == (3, 6, 5) and ds.layout == "channel-last"
    np.testing.assert_allclose(to_layout(ds.batch(), ds.layout), rgb)  # back in the user's layout

    np.savez(tmp_path / "tab.npz", X=rng.normal(size=(20, 4)), y=np.arange(20) % 2)
    ds = load_dataset(str(tmp_path / "tab.npz"))
    assert ds.kind == "tabular" and ds.sample_shape == (4,) and ds.y.tolist()[:4] == [0, 1, 0, 1]


def test_csv_with_header_and_label_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,cat\n3,4.5,dog\n-1,0,cat\n")
    ds = load_dataset(str(path))
    assert ds.columns == ("a", "b")
    np.testing.assert_allclose(ds.x.numpy(), [[1, 2], [3, 4.5], [-1, 0]])
    assert ds.y.tolist() == [0, 1, 0]


def test_csv_without_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2\n3,4\n")
    assert load_dataset(str(path)).x.shape == (2, 2)


def test_image_folder_with_class_subfolders(tmp_path):
    for label, value in (("cats", 0), ("dogs", 255)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((5, 7), value, np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    ds = load_dataset(str(tmp_path / "imgs"))
    assert ds.sample_shape == (1, 5, 7) and ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert float(ds.batch()[3:].min()) == 1.0


def test_image_folder_sizes_must_match_unless_resized(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((6, 4, 3), np.uint8)).save(folder / "b.jpg")
    with pytest.raises(VaekitError, match="image_size"):
        load_dataset(str(folder))
    ds = load_dataset(str(folder), image_size=parse_image_size("4x6"))
    assert ds.sample_shape == (3, 4, 6) and ds.layout == "channel-last"


@pytest.mark.slow  # seconds: the bundled MNIST subset's first read (a 5,000-row CSV)
def test_bundled_mnist_5k_and_digits():
    ds = load_dataset("mnist-5k")
    assert len(ds) == 5000 and ds.sample_shape == (1, 28, 28) and ds.y.bincount().tolist() == [500] * 10
    assert (bundled.cache_dir() / "mnist-5k.npz").exists()  # the fast copy for next time
    again = load_dataset("mnist-5k")
    assert bool((again.x == ds.x).all())
    digits = load_dataset("digits")
    assert digits.sample_shape == (1, 8, 8) and float(digits.batch().max()) == 1.0


def test_cifar_binary_parser(tmp_path):
    rng = np.random.default_rng(0)
    records = {}
    for name, n in [(f"data_batch_{i}.bin", 2) for i in range(1, 6)] + [("test_batch.bin", 3)]:
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        records[name] = (labels, pixels,
                         np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1).tobytes())
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, (_, _, raw) in records.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    x, y = read_cifar_binary(archive, "test")
    labels, pixels, _ = records["test_batch.bin"]
    assert x.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(x, pixels.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(y, labels)
    assert read_cifar_binary(archive, "train")[0].shape == (10, 32, 32, 3)


def test_download_offline_names_the_alternatives(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(VaekitError, match="mnist-5k, digits"):
        load_dataset("fashion-mnist")


def test_download_with_a_bad_checksum_is_refused(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"not mnist"))
    with pytest.raises(VaekitError, match="checksum"):
        load_dataset("mnist")
    assert not list((bundled.cache_dir() / "mnist").glob("*.gz"))


def test_downloaded_files_are_parsed_from_the_cache(monkeypatch, blobs):
    """A cache that already holds files with the right checksums is used without the network."""
    x, y = blobs
    folder = bundled.cache_dir() / "kmnist"
    write_idx_folder(folder, x, y)
    files = {p.name: bundled._md5(p) for p in folder.iterdir()}
    base, _ = bundled.IDX_DOWNLOADS["kmnist"]
    md5s = tuple(files.get(name, "0") for name in bundled._IDX_FILES)
    monkeypatch.setitem(bundled.IDX_DOWNLOADS, "kmnist", (base, md5s))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("went to the network"))
    ds = load_dataset("kmnist")
    assert len(ds) == len(x) and ds.y.tolist() == y.tolist()


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n3,oops\n4,5\n", "column 'b' holds numbers but also 'oops' .row 1."),  # a glitch, not text
    ("a,b\n1,2\n3,inf\n", "infinite values"),  # (NaN: a missing cell, see test_missing.py)
    ("a,b\n", "empty"),
    ("a,b\n1,2\n3\n", "line 3 has 1 fields"),
])
def test_bad_csv_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(VaekitError, match=message):
        load_dataset(str(path))


@pytest.mark.parametrize("array, message", [
    (np.zeros((0, 4)), "empty"),
    (np.array([[1.0, np.inf]]), "infinite values"),
    (np.full((2, 3, 3), np.nan), "NaN or infinite values"),  # images have no missing cells
    (np.zeros((2, 3, 8, 8)), "channel-first"),
    (np.zeros((2, 2, 2, 2, 2)), "expected"),
    (np.ones((3, 2), np.complex64), "complex numbers"),
])
def test_bad_arrays(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(VaekitError, match=message):
        load_dataset(str(tmp_path / "bad.npy"))


def test_unknown_spec_missing_file_and_corrupt_file(tmp_path):
    with pytest.raises(VaekitError, match="unknown dataset 'mnist-6k'.*mnist-5k"):
        load_dataset("mnist-6k")
    with pytest.raises(VaekitError, match="no such file"):
        load_dataset(str(tmp_path / "missing.npy"))
    (tmp_path / "junk.npy").write_bytes(b"\x00garbage")
    with pytest.raises(VaekitError, match="junk.npy"):
        load_dataset(str(tmp_path / "junk.npy"))
    (tmp_path / "x.parquet").write_bytes(b"")
    with pytest.raises(VaekitError, match="x.parquet: not a readable Parquet file"):
        load_dataset(str(tmp_path / "x.parquet"))
    (tmp_path / "x.xlsx").write_bytes(b"")
    with pytest.raises(VaekitError, match="unsupported file type"):
        load_dataset(str(tmp_path / "x.xlsx"))


def test_npz_without_X_names_the_fix(tmp_path):
    np.savez(tmp_path / "d.npz", data=np.zeros((3, 2)))
    with pytest.raises(VaekitError, match="np.savez"):
        load_dataset(str(tmp_path / "d.npz"))


def test_split_is_deterministic_and_disjoint(blobs_npz):
    ds = load_dataset(str(blobs_npz))
    a_train, a_val = ds.split(0.25, seed=3)
    b_train, b_val = ds.split(0.25, seed=3)
    assert len(a_val) == 60 and len(a_train) == 180
    assert bool((a_val.x == b_val.x).all())
    assert not bool((ds.split(0.25, seed=4)[1].x == a_val.x).all())


# Values float32 cannot carry: a table is standardised in float64 before the cast
EXTREME = {
    "1e12 plus noise of 1e3": lambda rng, n: 1e12 + 1e3 * rng.normal(size=(n, 3)),
    "values near 1e37": lambda rng, n: 1e37 + 1e35 * rng.normal(size=(n, 3)),
    "spread of 1e-9 around 0": lambda rng, n: 1e-9 * rng.normal(size=(n, 3)),
}


@pytest.mark.parametrize("make", EXTREME.values(), ids=EXTREME.keys())
@pytest.mark.parametrize("stream", [False, True], ids=["in memory", "streamed"])
def test_a_table_float32_cannot_carry_keeps_its_variation(tmp_path, make, stream):
    import vaekit

    x = make(np.random.default_rng(0), 200)
    if stream:  # a float64 .npy larger than the memory budget
        path = tmp_path / "t.npy"
        np.save(path, x)
    else:
        path = tmp_path / "t.csv"
        np.savetxt(path, x, delimiter=",", header="a,b,c", comments="", fmt="%.17g")
    run = vaekit.train(str(path), out=tmp_path / "run", hidden_dims=(16,), latent_dim=2, epochs=2,
                       progress=False, report=False, **({"memory_budget": 1024} if stream else {}))
    assert run.config.data.storage == ("stream" if stream else "memory")
    # the standardisation found each column's own spread (no column taken for a constant) ...
    assert np.allclose(run.config.data.std, x[:180].std(0, ddof=1), rtol=0.2)
    data = run.dataset(str(path))
    z = data.batch()
    # ... and the standardised values vary as the column does, in a few units
    assert torch.isfinite(z).all() and (z.std(0) > 0.5).all() and z.abs().max() < 10
    assert np.isfinite(run.metrics()[-1]["val_loss"])
    out = run.reconstruct(str(path))
    assert out.dtype == np.float64 and np.isfinite(out).all()
    assert (out.std(0) > 0).all()  # the output in data units still varies


def test_float32_tables_stay_float32_and_constant_columns_get_scale_one(tmp_path):
    from vaekit.data import as_dataset

    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    x[:, 1] = 7.0
    ds = as_dataset(x, None, "x")
    assert ds.x.dtype == torch.float32  # what float32 carries costs no more memory
    mean, std = ds.feature_stats()
    assert std[1] == 1.0 and mean[1] == 7.0 and std[0] != 1.0


def test_int16_images_are_refused_in_one_line(tmp_path):
    np.save(tmp_path / "i.npy", np.random.default_rng(0).integers(0, 256, (10, 8, 8)).astype(np.int16))
    with pytest.raises(VaekitError, match=r"images stored as int16 .*x.astype\(np.uint8\)"):
        load_dataset(str(tmp_path / "i.npy"), None)


def test_statistics_of_columns_at_float64s_limits_and_of_large_integers(tmp_path):
    from vaekit.data import as_dataset

    rng = np.random.default_rng(0)
    x = np.column_stack([np.where(rng.random(300) < 0.5, 1.7e308, -1.7e308),   # squares would overflow
                         1_700_000_000_000_000 + rng.integers(0, 100, 300),      # varies by 30 at 1.7e15
                         1e200 * rng.normal(size=300)])
    mean, std = as_dataset(x, None, "x").feature_stats()
    exact = np.std(x.astype(np.longdouble), 0, ddof=1).astype(np.float64)
    np.testing.assert_allclose(std, exact, rtol=1e-9)
    np.testing.assert_allclose(mean[1], np.mean(x[:, 1].astype(np.longdouble)), rtol=1e-15)
    run = vaekit_train(tmp_path, x)
    assert np.isfinite(run.metrics()[-1]["val_loss"]) and np.isfinite(run.reconstruct(x)).all()


def vaekit_train(tmp_path, x):
    import vaekit

    return vaekit.train(x, out=tmp_path / "run", hidden_dims=(16,), latent_dim=2, epochs=2, progress=False,
                        report=False)


def test_integer_images_of_0_and_1_are_read_as_0_and_1(tmp_path):
    x = np.random.default_rng(0).integers(0, 2, (20, 8, 8))  # int64, NumPy's default
    np.save(tmp_path / "b.npy", x)
    ds = load_dataset(str(tmp_path / "b.npy"), None)
    np.testing.assert_array_equal(ds.batch().numpy()[:, 0], x.astype(np.float32))


def test_reconstructions_of_a_far_table_keep_their_digits_on_disk(tmp_path):
    from vaekit.cli import main

    x = 1e12 + 1e3 * np.random.default_rng(0).normal(size=(100, 3))
    np.save(tmp_path / "t.npy", x)
    run = vaekit_train(tmp_path, x)
    for name in ("r.npy", "r.csv"):
        assert main(["reconstruct", str(run.path), "--data", str(tmp_path / "t.npy"),
                     "--out", str(tmp_path / name)]) == 0
    saved = np.load(tmp_path / "r.npy")
    assert saved.dtype == np.float64 and len(np.unique(saved[:, 0])) > 50  # float32 held one value
    in_csv = np.loadtxt(tmp_path / "r.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(in_csv, saved, rtol=1e-14, atol=0)  # 15 significant digits
    assert len(np.unique(in_csv[:, 0])) == len(np.unique(saved[:, 0]))
