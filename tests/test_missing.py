"""Tables with empty cells: missing values are left out of the likelihood (not errors), rows
with and without gaps score on one scale, and ``impute`` fills the gaps from the observed cells."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from helpers import TINY
from vaekit.cli import main
from vaekit.likelihoods import build


def correlated(n: int = 400, seed: int = 0, missing: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(complete table, the same with ``missing`` of its cells NaN): four columns driven by one
    factor, so each column is well predicted by the others."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 1))
    full = 10 + 3 * z @ np.array([[1.0, -0.8, 0.6, 1.2]]) + 0.2 * rng.normal(size=(n, 4))
    gaps = full.copy()
    gaps[rng.random(full.shape) < missing] = np.nan
    gaps[np.isnan(gaps).all(1), 0] = full[np.isnan(gaps).all(1), 0]  # no row entirely empty
    return full, gaps


def write_csv(path, x: np.ndarray) -> None:
    rows = [",".join("" if np.isnan(v) else f"{v:.6f}" for v in row) for row in x]
    path.write_text("a,b,c,d\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("name", ["gaussian-learned", "bernoulli", "laplace-learned"])
def test_a_row_with_gaps_scores_on_the_scale_of_a_whole_row(name):
    """Each missing cell counts as the row's observed cells do on average: a row whose cells all
    fit equally well has the same log-likelihood whichever of its cells are missing."""
    likelihood = build(name, (6,))
    x = torch.full((3, 6), 0.3)
    params = torch.full((3, 6), -0.4)
    whole = likelihood.log_prob(params, x)
    gappy = x.clone()
    gappy[1, :3] = float("nan")
    gappy[2, 1:] = float("nan")
    torch.testing.assert_close(likelihood.log_prob(params, gappy), whole)
    # and no NaN reaches a gradient
    params.requires_grad_(True)
    likelihood.log_prob(params, gappy).sum().backward()
    assert torch.isfinite(params.grad).all()


# A VAE weighs its posterior draws (MIWAE) and fills the gaps from the factor behind the row; an
# AE's reconstruct-and-refill learns to copy its input, so it fills little better than the mean.
@pytest.mark.parametrize("model, within", [("vae", 0.3), ("ae", 1.05)])
def test_impute_fills_gaps_from_the_observed_cells_and_keeps_what_was_given(tmp_path, model, within):
    full, gaps = correlated(n=300)
    run = vaekit.train(gaps, out=tmp_path / "run", model=model, hidden_dims=(32,), latent_dim=2, lr=5e-3,
                       epochs=80, patience=None, progress=False, report=False)
    filled = run.impute(gaps)
    missing = np.isnan(gaps)
    assert filled.dtype == np.float64 and not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~missing], gaps[~missing])  # given cells exactly as given
    mean_filled = np.where(missing, np.nanmean(gaps, 0), gaps)
    error = np.sqrt(((filled - full)[missing] ** 2).mean())
    assert error < within * np.sqrt(((mean_filled - full)[missing] ** 2).mean())


def test_a_csv_with_empty_cells_trains_and_every_command_reads_it(tmp_path, capsys):
    full, gaps = correlated(missing=0.25)
    write_csv(tmp_path / "t.csv", gaps)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "t.csv"), "--out", str(run), "--hidden-dims", "16",
                 "--latent-dim", "2", "--epochs", "3", "--quiet", "--no-report"]) == 0
    for command, out in (("impute", "f.csv"), ("impute", "f.npy"), ("encode", "c.npy"), ("reconstruct", "r.npy")):
        assert main([command, str(run), "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / out)]) == 0
    filled = np.loadtxt(tmp_path / "f.csv", delimiter=",", skiprows=1)
    given = ~np.isnan(gaps)
    np.testing.assert_allclose(filled[given], np.round(gaps, 6)[given], rtol=0, atol=1e-12)
    assert not np.isnan(filled).any()
    in_npy = np.load(tmp_path / "f.npy")
    np.testing.assert_array_equal(in_npy[given], filled[given])  # given cells as written, in both
    np.testing.assert_allclose(in_npy, filled, rtol=1e-14, atol=0)  # the CSV's 15 significant digits
    assert np.isfinite(np.load(tmp_path / "c.npy")).all() and np.isfinite(np.load(tmp_path / "r.npy")).all()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(tmp_path / "t.csv"), "--json"]) == 0
    assert '"mse": NaN' not in capsys.readouterr().out


def test_a_detector_takes_gaps_and_finds_anomalies_better_than_isolation_forest_on_mean_filled_data():
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 8))

    def rows(n):
        return rng.normal(size=(n, 2)) @ w + 0.1 * rng.normal(size=(n, 8))

    train, normal = rows(800), rows(150)
    anomalies = rng.normal(size=(30, 8)) * train.std(0)  # the columns' spread, off the plane
    test, y = np.vstack([normal, anomalies]), np.r_[np.zeros(150), np.ones(30)]
    for x in (train, test):
        x[rng.random(x.shape) < 0.3] = np.nan
        x[np.isnan(x).all(1), 0] = 0.0
    det = vaekit.AnomalyDetector(random_state=0).fit(train)
    scores = det.decision_function(test)
    assert np.isfinite(scores).all()
    mean = np.nanmean(train, 0)

    def filled(x):
        return np.where(np.isnan(x), mean, x)

    forest = -IsolationForest(random_state=0).fit(filled(train)).score_samples(filled(test))
    assert roc_auc_score(y, scores) > roc_auc_score(y, forest) + 0.05


def test_detect_fit_and_score_read_a_csv_with_empty_cells(tmp_path):
    _, gaps = correlated(missing=0.2)
    write_csv(tmp_path / "t.csv", gaps)
    assert main(["detect", "fit", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "det"),
                 "--epochs", "3", "--quiet"]) == 0
    assert main(["detect", "score", str(tmp_path / "det"), "--data", str(tmp_path / "t.csv"),
                 "--out", str(tmp_path / "s.csv")]) == 0
    scores = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert len(scores) == len(gaps) and np.isfinite(scores).all()


def test_parquet_nulls_are_missing_cells(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    full, gaps = correlated(n=200, missing=0.2)
    table = pa.table({c: pa.array([None if np.isnan(v) else v for v in gaps[:, i]]) for i, c in enumerate("abcd")})
    pq.write_table(table, tmp_path / "t.parquet")
    run = vaekit.train(str(tmp_path / "t.parquet"), out=tmp_path / "run", **TINY)
    filled = run.impute(str(tmp_path / "t.parquet"))
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(gaps)], gaps[~np.isnan(gaps)])


def test_an_infinity_is_not_a_missing_cell_but_one_line(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("a,b\n1,2\ninf,3\n4,5\n")
    assert main(["train", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "infinite values" in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_row_with_every_cell_missing_trains_imputes_and_scores(tmp_path):
    """With 15% of 3 columns missing, about one row in 300 is empty: it holds no evidence, so it
    costs training nothing, is imputed with what the model expects of any row, and scores finite."""
    full, gaps = correlated(n=200)
    gaps[5] = np.nan
    run = vaekit.train(gaps, out=tmp_path / "run", **{**TINY, "hidden_dims": (16,), "latent_dim": 2})
    assert np.isfinite(run.metrics()[-1]["val_loss"] or run.metrics()[-1]["train_loss"])
    filled = run.impute(gaps)
    assert np.isfinite(filled).all() and np.all(np.abs(filled[5] - np.nanmean(gaps, 0)) < 4 * np.nanstd(gaps, 0))
    scores = vaekit.AnomalyDetector(epochs=5, random_state=0).fit(gaps).decision_function(gaps)
    assert np.isfinite(scores).all()


def test_images_with_nan_are_still_refused_and_impute_is_for_tables(tmp_path, blobs, capsys):
    x = blobs[0].astype(np.float32) / 255
    x[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values"):
        vaekit.train(x, out=tmp_path / "nan", **TINY)
    run = vaekit.train(blobs[0], out=tmp_path / "run", **TINY)
    with pytest.raises(ValueError, match="impute fills the missing cells of a table"):
        run.impute(blobs[0])
