"""AnomalyDetector: it finds planted anomalies, keeps the scikit-learn / PyOD contract,
scores deterministically, saves and reloads, and refuses data unlike its training data."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from vaekit import AnomalyDetector, VaekitError
from vaekit.cli import main

from conftest import make_blobs

FAST = dict(epochs=40, random_state=0)


def planted(seed: int = 0, n_normal: int = 600, n_anomalies: int = 40):
    """Normal rows lie near a 2-D plane in 6-D (x = z W + noise); anomalies have the same
    spread per column but lie off the plane."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(2, 6))

    def normal(n):
        return rng.normal(size=(n, 2)) @ w + 0.1 * rng.normal(size=(n, 6))

    train, test_normal = normal(n_normal), normal(200)
    anomalies = rng.normal(size=(n_anomalies, 6)) * train.std(0) + train.mean(0)
    scale = np.array([1, 2, 3, 1, 2, 5]), 10  # unequal scales and offsets: the detector standardises
    train, test = (train * scale[0] + scale[1], np.concatenate([test_normal, anomalies]) * scale[0] + scale[1])
    return train.astype(np.float32), test.astype(np.float32), np.r_[np.zeros(200), np.ones(n_anomalies)]


# A VAE's plain reconstruction error ignores the KL term and the learned scales, so it is
# the weaker score (hence not the default); the others must find nearly every anomaly.
@pytest.mark.parametrize("model, score, bar", [("vae", "auto", 0.95), ("vae", "iw", 0.95), ("ae", "auto", 0.95),
                                               ("vae", "recon", 0.8)])
def test_finds_planted_anomalies(model, score, bar):
    train, test, y = planted()
    det = AnomalyDetector(model=model, score=score, **FAST).fit(train)
    assert roc_auc_score(y, det.decision_function(test)) > bar


def test_scikit_learn_and_pyod_contract():
    train, test, _ = planted()
    det = AnomalyDetector(contamination=0.05, **FAST)
    with pytest.raises(NotFittedError):
        det.decision_function(test)
    assert det.fit(train) is det
    assert det.get_params()["contamination"] == 0.05
    copy = clone(det)
    assert copy.get_params() == det.get_params() and not hasattr(copy, "threshold_")
    assert copy.set_params(model="ae") is copy and copy.model == "ae"

    assert det.decision_scores_.shape == (600,) and det.labels_.shape == (600,)
    assert det.labels_.mean() == pytest.approx(0.05, abs=0.01)
    scores = det.decision_function(test)
    np.testing.assert_array_equal(det.predict(test), (scores > det.threshold_).astype(int))
    proba = det.predict_proba(test)
    assert proba.shape == (240, 2) and np.allclose(proba.sum(1), 1) and proba.min() >= 0 and proba.max() <= 1
    assert det.n_features_in_ == 6


def test_scores_are_deterministic_and_independent_of_the_batch():
    train, test, _ = planted()
    a = AnomalyDetector(**FAST).fit(train)
    b = AnomalyDetector(**FAST).fit(train)
    np.testing.assert_array_equal(a.decision_function(test), b.decision_function(test))
    one_by_one = np.concatenate([a.decision_function(test[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, a.decision_function(test)[:5], rtol=1e-5)
    c = AnomalyDetector(epochs=40, random_state=1).fit(train)
    assert not np.array_equal(a.decision_function(test), c.decision_function(test))


def test_dataframes_keep_their_column_names():
    pd = pytest.importorskip("pandas")
    train, test, _ = planted()
    cols = list("abcdef")
    det = AnomalyDetector(**FAST).fit(pd.DataFrame(train, columns=cols))
    assert list(det.feature_names_in_) == cols
    assert det.decision_function(pd.DataFrame(test, columns=cols)).shape == (240,)
    with pytest.raises(ValueError, match="differ from those the detector was fitted on"):
        det.decision_function(pd.DataFrame(test, columns=list("abcdeg")))
    with pytest.raises(ValueError, match="not numeric"):
        det.fit(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))


def test_wrong_shape_and_bad_parameters_are_clear_errors():
    train, test, _ = planted()
    det = AnomalyDetector(**FAST).fit(train)
    with pytest.raises(ValueError, match="fitted on shape"):
        det.decision_function(test[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        det.decision_function(np.full((2, 6), np.nan, np.float32))
    with pytest.raises(ValueError, match="needs a VAE"):
        AnomalyDetector(model="ae", score="elbo").fit(train)
    with pytest.raises(ValueError, match="contamination"):
        AnomalyDetector(contamination=0.7).fit(train)


def test_save_and_load_give_the_same_scores(tmp_path):
    train, test, _ = planted()
    det = AnomalyDetector(**FAST).fit(train)
    det.save(tmp_path / "det")
    again = AnomalyDetector.load(tmp_path / "det")
    np.testing.assert_array_equal(det.decision_function(test), again.decision_function(test))
    assert again.threshold_ == det.threshold_ and again.get_params() == det.get_params()
    with pytest.raises(VaekitError, match="already exists"):
        det.save(tmp_path / "det")


def test_images_one_class():
    x, y = make_blobs(n=400)
    det = AnomalyDetector(hidden_dims=(64,), latent_dim=4, epochs=30, random_state=0).fit(x[y != 2][:200])
    scores = det.decision_function(x[200:])
    assert roc_auc_score(y[200:] == 2, scores) > 0.95


def test_detect_command_line(tmp_path, capsys):
    train, test, y = planted()
    np.save(tmp_path / "train.npy", train)
    np.savez(tmp_path / "new.npz", X=test, y=y.astype(int))
    assert main(["detect", "fit", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "det"),
                 "--epochs", "40", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["detect", "score", str(tmp_path / "det"), "--data", str(tmp_path / "new.npz"),
                 "--out", str(tmp_path / "scores.csv"), "--json"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["auroc"] > 0.95 and set(metrics) >= {"auprc", "f1", "threshold", "flagged"}
    assert "report:" in captured.err and "ROC and precision-recall" in (tmp_path / "det" / "report.html").read_text()
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert rows[0] == "score,label" and len(rows) == 241
    assert main(["info", str(tmp_path / "det"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["detector"]
    assert info["training_rows"] == 600 and info["flagged_in_training"] == 60
    np.save(tmp_path / "wide.npy", np.zeros((3, 7), np.float32))
    assert main(["detect", "score", str(tmp_path / "det"), "--data", str(tmp_path / "wide.npy"),
                 "--out", str(tmp_path / "s.csv")]) == 2
    assert "fitted on shape" in capsys.readouterr().err
