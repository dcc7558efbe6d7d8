"""AnomalyDetector: it finds planted anomalies, keeps the scikit-learn / PyOD contract,
scores deterministically, saves and reloads, and refuses data unlike its training data."""
from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import estimator_checks_generator

from helpers import make_blobs, png_bytes
from vaekit import AnomalyDetector, VaekitError
from vaekit.cli import main

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
    det = AnomalyDetector(model=model, anomaly_score=score, **FAST).fit(train)
    assert roc_auc_score(y, det.decision_function(test)) > bar


# scikit-learn's checks that do not apply to a detector with PyOD's conventions, and why.
PYOD_CONVENTIONS = "scikit-learn's outlier detectors label inliers +1 and outliers -1 and score inliers " \
                   "higher; PyOD's, and ours, label anomalies 1 and normal rows 0 and score anomalies higher"
NOT_APPLICABLE = {
    "check_outliers_train": PYOD_CONVENTIONS,
    "check_outliers_fit_predict": PYOD_CONVENTIONS,
    "check_fit_score_takes_y": "score(X, y) reads y as 0/1 anomaly marks (it is the AUROC) and refuses the "
                               "three classes this check passes",
}


def check_name(check) -> str:
    """A check's name, with the arguments it is bound to (as scikit-learn's own test ids)."""
    check = getattr(check, "__wrapped__", check)  # a skipped check wraps the real one
    if isinstance(check, functools.partial):
        bound = ",".join(f"{k}={v}" for k, v in check.keywords.items())
        return f"{check.func.__name__}({bound})" if bound else check.func.__name__
    return check.__name__


# The checks that do not apply are skipped with their reason, not run to fail (xfail would cost
# seconds and assert nothing); test_scikit_learn_and_pyod_contract asserts PyOD's conventions.
CHECKS = list(estimator_checks_generator(AnomalyDetector(epochs=3, random_state=0),
                                         expected_failed_checks=NOT_APPLICABLE, mark="skip"))


@pytest.mark.parametrize("estimator, check", CHECKS, ids=[check_name(check) for _, check in CHECKS])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


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


def test_pyod_api_confidence_and_rejection():
    train, test, _ = planted()
    det = AnomalyDetector(contamination=0.05, **FAST)
    np.testing.assert_array_equal(det.fit_predict(train), det.labels_)
    scores = det.decision_function(test)
    labels, confidence = det.predict(test, return_confidence=True)
    np.testing.assert_array_equal(labels, det.predict(test))
    np.testing.assert_allclose(confidence, det.predict_confidence(test))
    assert confidence.min() >= 0 and confidence.max() <= 1
    # sure far from the threshold, least sure at it
    distance = np.abs(scores - det.threshold_)
    assert confidence[distance.argmax()] > 0.99 and confidence[distance.argmin()] < 0.75
    proba, again = det.predict_proba(test, method="unify", return_confidence=True)
    np.testing.assert_allclose(again, confidence)
    order = np.argsort(scores)
    assert np.all(np.diff(proba[order, 1]) >= 0) and np.allclose(proba.sum(1), 1)
    with pytest.raises(ValueError, match="method must be 'linear' or 'unify'"):
        det.predict_proba(test, method="sigmoid")

    rank = np.searchsorted(np.sort(det.decision_scores_), scores, side="right")
    threshold_rank = np.searchsorted(np.sort(det.decision_scores_), det.threshold_, side="right")
    rejected = {}
    for t in (2, 8):
        marks, (expected, upper, cost) = det.predict_with_rejection(test, T=t, return_stats=True)
        kept = marks != -2
        np.testing.assert_array_equal(marks[kept], labels[kept])  # what is not left to a person is unchanged
        # rejected: a band of training-score ranks around the threshold, with no kept row inside it
        rejected_ranks = rank[~kept]
        assert not np.any((rank[kept] > rejected_ranks.min()) & (rank[kept] < rejected_ranks.max()))
        assert abs(np.median(rejected_ranks) - threshold_rank) < 0.05 * len(det.decision_scores_)
        assert 0 <= expected <= upper and cost >= 0
        rejected[t] = (~kept).sum()
    assert 0 < rejected[2] <= rejected[8] < len(test)  # a larger T rejects more


@pytest.mark.slow  # seconds: eleven fits
def test_model_selection_scores_by_auroc():
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test, y = planted()
    pipe = make_pipeline(StandardScaler(), AnomalyDetector(**FAST)).fit(train)
    assert pipe.score(test, y) == pytest.approx(roc_auc_score(y, pipe.decision_function(test)))
    # labelled data with a few anomalies in every fold, the training folds too
    X, marks = np.concatenate([train, test]), np.r_[np.zeros(len(train)), y]
    assert cross_val_score(AnomalyDetector(**FAST), X, marks, cv=StratifiedKFold(3, shuffle=True, random_state=0)
                           ).mean() > 0.85
    search = GridSearchCV(AnomalyDetector(**FAST), {"model": ["ae", "vae"]},
                          cv=StratifiedKFold(2, shuffle=True, random_state=0)).fit(X, marks)
    assert search.best_score_ == max(search.cv_results_["mean_test_score"]) > 0.7
    assert AnomalyDetector(**FAST).fit(train).score(test) < 0  # no labels: minus the mean anomaly score
    with pytest.raises(ValueError, match="0/1 mark per row"):
        AnomalyDetector(**FAST).fit(train).score(test, np.arange(len(test)) % 3)


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
    with pytest.raises(ValueError, match="X.s column 5 is .g., but the detector was fitted with .f. there"):
        det.decision_function(pd.DataFrame(test, columns=list("abcdeg")))
    with pytest.raises(ValueError, match="column 'b' holds numbers but also 'x'"):  # a glitch, not categories
        det.fit(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, "x", 2.0, 3.0]}))


def test_wrong_shape_and_bad_input_are_clear_errors():
    sparse = pytest.importorskip("scipy.sparse")
    pd = pytest.importorskip("pandas")
    train, test, _ = planted()
    det = AnomalyDetector(**FAST).fit(train)
    with pytest.raises(ValueError, match="X has 5 features, but AnomalyDetector is expecting 6"):
        det.decision_function(test[:, :5])
    assert np.isfinite(det.decision_function(np.full((2, 6), np.nan, np.float32))).all()  # NaN: a missing cell
    for X, message in [(sparse.csr_matrix(train), "sparse input is not supported; pass X.toarray()"),
                       (train.astype(np.complex64), "X holds complex numbers; give real values"),
                       (pd.DataFrame({"t": pd.date_range("2020", periods=6), "v": np.arange(6.0)}),
                        "column.*t.* holds? dates or durations; turn them into numbers"),
                       (np.zeros((5, 0)), "0 feature"),
                       (train[:1], "1 sample"),
                       (train[:, 0], "Reshape your data"),
                       (np.array([[{"a": 1}, 2.0], [3.0, 4.0]], dtype=object), "must be numeric")]:
        with pytest.raises(ValueError, match=message) as error:
            AnomalyDetector(**FAST).fit(X)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="beyond what float32 holds"):  # images are computed in float32
        AnomalyDetector(**FAST).fit(np.full((4, 6, 6), 1e39))
    numbers_as_objects = train.astype(object)
    assert AnomalyDetector(epochs=2).fit(numbers_as_objects).decision_function(numbers_as_objects).shape == (600,)


@pytest.mark.parametrize("params, message", [
    (dict(batch_size=0), "batch_size must be 'auto' or an integer of at least 1"),
    (dict(epochs=0), "epochs must be"), (dict(lr=-1), "lr must be"), (dict(lr="fast"), "lr must be"),
    (dict(contamination="x"), "contamination must be a number in"), (dict(contamination=0.7), "contamination"),
    (dict(model="gan"), "model must be"), (dict(anomaly_score="max"), "anomaly_score must be one of"),
    (dict(model="ae", anomaly_score="elbo"), "needs a VAE"), (dict(n_samples=0), "n_samples"),
    (dict(hidden_dims=(64, 0)), "hidden_dims"), (dict(hidden_dims=64), "hidden_dims"),
    (dict(latent_dim=2.5), "latent_dim"), (dict(val_fraction=1.0), "val_fraction"),
    (dict(patience=0), "patience"), (dict(likelihood="poisson"), "likelihood"),
    (dict(random_state="seed"), "random_state"), (dict(random_state=2 ** 64), "random_state"),
    (dict(device="gpu"), "device"), (dict(device="cuda:x"), "device"),
])
def test_every_bad_parameter_is_one_clear_value_error(params, message):
    train, _, _ = planted()
    with pytest.raises(ValueError, match=message):
        AnomalyDetector(**params).fit(train)


@pytest.mark.parametrize("model", ["vae", "ae"])
def test_save_and_load_give_the_same_scores(tmp_path, model):
    train, test, _ = planted()
    det = AnomalyDetector(model=model, **FAST).fit(train)
    det.save(tmp_path / "det")
    again = AnomalyDetector.load(tmp_path / "det")
    np.testing.assert_array_equal(det.decision_function(test), again.decision_function(test))
    assert again.threshold_ == det.threshold_ and again.get_params() == det.get_params()
    with pytest.raises(VaekitError, match="already exists"):
        det.save(tmp_path / "det")


def test_a_detector_saved_before_robust_units_scores_as_it_did(tmp_path):
    """Folders written before the median and the clip hold the mean and no clip: they are read as
    such, so their saved threshold still fits their scores."""
    train, test, _ = planted()
    det = AnomalyDetector(**FAST).fit(train)
    det.save(tmp_path / "det")
    state_file = tmp_path / "det" / "detector.json"
    state = json.loads(state_file.read_text())
    state["mean"] = state.pop("center")
    del state["clip"]
    state_file.write_text(json.dumps(state))
    old = AnomalyDetector.load(tmp_path / "det")
    assert old.clip_ is None
    np.testing.assert_array_equal(old.center_, det.center_)
    np.testing.assert_array_equal(old.decision_function(test[:5]), det.decision_function(test[:5]))


def test_save_keeps_numpy_parameters_and_random_generators(tmp_path):
    train, test, _ = planted()
    det = AnomalyDetector(epochs=np.int64(3), lr=np.float32(1e-3), hidden_dims=(8,),
                          random_state=np.random.RandomState(0)).fit(train)
    again = AnomalyDetector.load(det.save(tmp_path / "det"))
    assert again.get_params() == {**det.get_params(), "random_state": det.seed_}  # the seed the generator gave
    np.testing.assert_array_equal(again.decision_function(test), det.decision_function(test))
    with pytest.raises(NotFittedError):
        _ = AnomalyDetector().anomaly_score_
    tiny = AnomalyDetector(epochs=2, random_state=0).fit(train[:9])  # 9 rows x 0.1: no anomaly expected
    with pytest.raises(ValueError, match="at least one expected anomaly"):
        tiny.compute_rejection_stats()


def test_images_one_class():
    x, y = make_blobs(n=400)
    det = AnomalyDetector(hidden_dims=(64,), latent_dim=4, epochs=30, random_state=0).fit(x[y != 2][:200])
    scores = det.decision_function(x[200:])
    assert roc_auc_score(y[200:] == 2, scores) > 0.95


def test_a_flat_table_of_pixels_is_scored_like_the_images(tmp_path):
    x, y = make_blobs(n=400, size=10)
    normal = y[:200] != 2
    flat = x.reshape(len(x), -1) / 255  # how fetch_openml and CSV exports give images: one pixel per column
    images = AnomalyDetector(epochs=30, random_state=0).fit(x[:200][normal])
    table = AnomalyDetector(epochs=30, random_state=0).fit(flat[:200][normal])
    # not standardised column by column (that would blow up the near-constant pixels), scored as images are
    assert table.intensities_ and np.all(table.scale_ == 1) and table.anomaly_score_ == "recon"
    auroc = roc_auc_score(y[200:] == 2, table.decision_function(flat[200:]))
    assert auroc > 0.95
    assert auroc == pytest.approx(roc_auc_score(y[200:] == 2, images.decision_function(x[200:])), abs=0.01)
    again = AnomalyDetector.load(table.save(tmp_path / "det"))
    assert again.intensities_ and again.anomaly_score_ == "recon"
    np.testing.assert_array_equal(again.decision_function(flat[200:]), table.decision_function(flat[200:]))
    # a narrow table in [0, 1] (min-max-scaled features) is still standardised as features are
    train, _, _ = planted()
    unit = (train - train.min(0)) / (train.max(0) - train.min(0))
    narrow = AnomalyDetector(epochs=2, random_state=0).fit(unit)
    assert not narrow.intensities_ and not np.allclose(narrow.scale_, 1) and narrow.anomaly_score_ == "elbo"


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
    whole = json.loads(capsys.readouterr().out)
    info = whole["detector"]
    assert whole["kind"] == "detector" and info["training_rows"] == 600 and info["flagged_in_training"] == 60
    det = AnomalyDetector.load(tmp_path / "det")  # the file's labels are the threshold's, applied in one place
    scores = np.loadtxt(tmp_path / "scores.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(scores[:, 1], det.predict(test))
    np.save(tmp_path / "wide.npy", np.zeros((3, 7), np.float32))
    assert main(["detect", "score", str(tmp_path / "det"), "--data", str(tmp_path / "wide.npy"),
                 "--out", str(tmp_path / "s.csv")]) == 2
    assert "X has 7 features, but AnomalyDetector is expecting 6" in capsys.readouterr().err


@pytest.mark.slow  # seconds: a detector and its report, written three times
def test_an_image_folders_subfolders_0_and_1_are_anomaly_marks_and_names_are_not(tmp_path, capsys):
    """Subfolders are numbered in sorted order, so anomaly/ and normal/ would read as 0 and 1
    backwards (an AUROC of 1 - the truth): names give no metrics and say how to mark; 0/ and
    1/ are the marks they say."""
    x, y = make_blobs(120)
    folders = {"train": [i for i in range(60) if y[i] == 0]}
    for i in range(60, 120):
        folders.setdefault(f"new/{'anomaly' if y[i] else 'normal'}", []).append(i)
    for folder, rows in folders.items():
        (tmp_path / folder).mkdir(parents=True)
        for i in rows:
            (tmp_path / folder / f"{i}.png").write_bytes(png_bytes(x[i] / 255))
    assert main(["detect", "fit", "--data", str(tmp_path / "train"), "--out", str(tmp_path / "det"), "--epochs", "10",
                 "--quiet"]) == 0
    score = ["detect", "score", str(tmp_path / "det"), "--data", str(tmp_path / "new"), "--out",
             str(tmp_path / "s.csv"), "--json"]
    capsys.readouterr()
    assert main(score) == 0
    out, err = capsys.readouterr()
    assert "auroc" not in json.loads(out)
    assert "labels are names (anomaly, normal)" in err and "name the subfolders 1 (anomalies) and 0" in err
    (tmp_path / "new" / "normal").rename(tmp_path / "new" / "0")
    (tmp_path / "new" / "anomaly").rename(tmp_path / "new" / "1")
    assert main(score) == 0
    assert json.loads(capsys.readouterr().out)["auroc"] > 0.9


def test_the_docstring_example_gives_what_it_shows():
    import doctest

    import vaekit.anomaly

    result = doctest.testmod(vaekit.anomaly)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize("rows, epochs", [(5, 300), (100, 300), (400, 100), (1800, 34), (63_000, 2), (70_000, 1)])
def test_a_table_trains_about_a_step_per_row_within_300_to_500(rows, epochs):
    from vaekit.anomaly import AUTO_TRAINING, auto_epochs

    auto = AUTO_TRAINING["table"]
    assert auto_epochs(rows, min(auto["batch_size"], rows), auto["steps"], auto["epochs"]) == epochs


def test_a_fitted_table_detector_trained_by_that_rule():
    x = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)
    det = AnomalyDetector(random_state=0).fit(x)
    assert det.train_config_.epochs == 100 and det.train_config_.batch_size == 100  # 4 equal batches, 400 steps


def test_a_wide_table_trains_on_a_budget_of_values():
    x = np.random.default_rng(0).normal(size=(150, 1000)).astype(np.float32)
    det = AnomalyDetector(model="ae", random_state=0).fit(x)
    # batches of 32 made equal (5 of 30), 1.5 million values = 50 steps = 10 passes; 64 hidden units
    assert det.train_config_.batch_size == 30 and det.train_config_.epochs == 10
    assert det.model_config_.hidden_dims == (64,)


@pytest.mark.parametrize("model", ["vae", "ae"])
def test_a_rows_score_does_not_depend_on_the_rows_beside_it(model):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 7)) * rng.uniform(0.1, 100, 7)
    det = AnomalyDetector(model=model, epochs=3, random_state=0).fit(x)
    together = det.predict_proba(x[:512])[:, 1]
    for i in (0, 37, 511):
        alone = det.predict_proba(x[i:i + 1])[0, 1]
        assert abs(alone - together[i]) < 1e-9
    np.testing.assert_allclose(det.decision_function(x[::-1][:300])[::-1], det.decision_function(x)[300:],
                               rtol=1e-12)


# Finite values float32 cannot carry: the detector's units are worked out in float64
FAR = {"1e12 plus the data in units of 1e3": (1e12, 1e3), "near 1e37": (1e37, 1e35), "spread of 1e-9": (0.0, 1e-9)}


@pytest.mark.parametrize("offset, unit", FAR.values(), ids=FAR.keys())
def test_values_float32_cannot_carry_are_detected_as_well_as_plain_ones(offset, unit):
    from sklearn.metrics import roc_auc_score

    train, test, y = planted()
    plain = AnomalyDetector(**FAST).fit(train).decision_function(test)
    far = AnomalyDetector(**FAST).fit(offset + unit * train.astype(np.float64))
    scores = far.decision_function(offset + unit * test.astype(np.float64))
    assert np.isfinite(scores).all() and len(np.unique(scores)) == len(scores)
    assert roc_auc_score(y, scores) > roc_auc_score(y, plain) - 0.02


def test_cells_at_float32s_limit_leave_a_finite_fit():
    train, test, y = planted()
    train = train.astype(np.float64)
    train[:3, 0] = 3e38
    det = AnomalyDetector(**FAST).fit(train)
    assert np.isfinite(det.decision_function(test)).all()
    assert np.isfinite(det.decision_function(train)).all()
