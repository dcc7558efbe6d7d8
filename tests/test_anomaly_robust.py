"""The detector on the data real users bring: hostile tables (tests/hostile.py) fit with default
settings, score finite, and find planted anomalies about as well as an IsolationForest; the
robust parts (units, the soft clip, the trimming fence, the rate per fan-in, the refit at a
lower rate) each do what they promise."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

import hostile
from vaekit import AnomalyDetector, VaekitError, VaekitWarning
from vaekit.objectives import within_fence
from vaekit.robust import robust_standardize, robust_units, soft_clip
from vaekit.training import make_optimizer


@pytest.mark.slow
@pytest.mark.parametrize("case", list(hostile.CASES))
def test_hostile_tables_fit_with_defaults_and_their_anomalies_are_found(case):
    train, test, y = hostile.make(case, seed=0)
    forest = roc_auc_score(y, -IsolationForest(random_state=0).fit(train).score_samples(test))
    for model in ("vae", "ae"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", VaekitWarning)  # no refit needed: the defaults fit as they are
            det = AnomalyDetector(model=model, random_state=0).fit(train)
        scores = det.decision_function(test)
        assert np.isfinite(scores).all() and np.isfinite(det.decision_scores_).all(), model
        assert roc_auc_score(y, scores) > forest - 0.05, (model, roc_auc_score(y, scores), forest)


def test_robust_units_are_not_moved_by_glitch_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3)) * [1.0, 10.0, 0.01] + [0.0, 5.0, 1e9]
    center, scale = robust_units(x)
    np.testing.assert_allclose(scale, [1.0, 10.0, 0.01], rtol=0.1)  # the standard deviation, for normal data
    glitched = x.copy()
    glitched[:5] *= 1e4
    center2, scale2 = robust_units(glitched)
    np.testing.assert_allclose(center2, center, rtol=1e-2, atol=0.05)
    np.testing.assert_allclose(scale2, scale, rtol=0.02)
    assert np.all(glitched.std(0) > 100 * x.std(0))  # what the standard deviation does instead


def test_robust_units_of_flags_counts_and_constants():
    rng = np.random.default_rng(0)
    flag = (rng.random(1000) < 0.01).astype(float)           # 1 in 1% of rows
    counts = rng.poisson(0.2, 1000).astype(float) * 3        # mostly 0, else 3, 6, ...
    constant = np.full(1000, 7.5)
    center, scale = robust_units(np.column_stack([flag, counts, constant]))
    np.testing.assert_array_equal(center, [0, 0, 7.5])
    np.testing.assert_array_equal(scale, [1, 3, 1])  # a flag's 1 is one unit; a constant keeps its units


def test_soft_clip_keeps_order_and_makes_every_value_finite():
    z = torch.tensor([-math.inf, -3e38, -1e30, -1e3, -100.0, -5.0, 0.0, 5.0, 100.0, 1e3, 1e30, 3e38, math.inf])
    clipped = soft_clip(z, 100.0)
    assert torch.isfinite(clipped).all()
    assert torch.all(clipped[1:] >= clipped[:-1]) and torch.all(clipped[2:-2].diff() > 0)
    assert torch.equal(clipped[4:9], z[4:9])  # within the bound, values stay as they are
    assert 100 < clipped[-3] < 7000  # 1e30 is about 6,700


def test_the_fence_is_tukeys_and_holds_with_up_to_half_a_batch_far_off():
    loss = torch.randn(129).exp()
    q1, q3 = torch.quantile(loss, torch.tensor([0.25, 0.75]))
    assert torch.equal(within_fence(loss, 5.0), loss <= q3 + 5 * (q3 - q1))
    small = torch.randn(9)
    small[:4] = torch.tensor([1e8, 3e7, 1e9, math.inf])  # four glitch rows in a batch of nine
    assert within_fence(small, 5.0).tolist() == [False] * 4 + [True] * 5
    small[0] = math.nan  # a model that broke: every row counts, so the loss shows it
    assert within_fence(small, 5.0).all()


def test_rate_per_fan_in():
    net = torch.nn.Sequential(torch.nn.Linear(1000, 64), torch.nn.Linear(64, 16))
    rates = {tuple(p.shape): g["lr"] for g in make_optimizer(net, 0.01, fan_in=64).param_groups
             for p in g["params"]}
    assert rates[(64, 1000)] == pytest.approx(0.01 * math.sqrt(64 / 1000))
    assert rates[(16, 64)] == rates[(64,)] == rates[(16,)] == 0.01
    assert {g["lr"] for g in make_optimizer(net, 0.01).param_groups} == {0.01}


def test_a_glitch_row_neither_stops_the_fit_nor_blinds_the_detector():
    train, test, y = hostile.make("five glitch rows x1e4", seed=1)
    det = AnomalyDetector(random_state=0).fit(train)
    assert roc_auc_score(y, det.decision_function(test)) > 0.85
    glitches = np.flatnonzero(np.abs(train).max(1) > 1e3)
    assert len(glitches) == 5 and np.all(det.labels_[glitches] == 1)  # the glitches themselves are flagged


def test_values_spread_over_float32s_whole_range_fit():
    """A column of values near -1e38 and 1e38: its spread is beyond float32, and x minus its
    median overflows unless worked out with care; the fit must neither fail nor warn."""
    rng = np.random.default_rng(0)
    for far in (1.8e38, 3e38):
        x = rng.normal(size=(200, 3))
        x[:, 0] = rng.choice([-far, far], 200)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            det = AnomalyDetector(model="ae", epochs=3, random_state=0).fit(x)
            assert np.isfinite(det.decision_function(x)).all()
    z = robust_standardize(torch.tensor([[-3e38], [3e38]]), np.float32([3e38]), np.float32([1.0]), 100.0)
    assert torch.isfinite(z).all() and z[0, 0] < -100 and z[1, 0] == 0


def test_a_table_of_bytes_scores_as_the_numbers_it_holds(tmp_path):
    """pandas' downcast makes ages and counts uint8; vaekit reads uint8 images as x / 255, but
    the same rows as int64, floats, or a uint8 file read on demand must score alike."""
    import pandas as pd

    from vaekit.data import open_lazy

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"age": rng.integers(18, 90, 300), "children": rng.integers(0, 5, 300),
                          "visits": rng.poisson(20, 300)}).astype(np.uint8)
    det = AnomalyDetector(model="ae", epochs=3, random_state=0).fit(table)
    assert det.center_[0] == np.median(table["age"])  # in years, not in 255ths
    scores = det.decision_function(table)
    for same in (table.astype(np.int64), table.to_numpy(np.float64)):
        np.testing.assert_array_equal(det.decision_function(same), scores)
    np.save(tmp_path / "t.npy", table.to_numpy())
    streamed = np.concatenate(list(det.score_chunks(open_lazy(str(tmp_path / "t.npy")), chunk=64)))
    np.testing.assert_allclose(streamed, scores, rtol=1e-6)
    assert det.predict(table).mean() == pytest.approx(0.1, abs=0.02)
    refit = AnomalyDetector(model="ae", epochs=3, random_state=0).fit(table.astype(np.float32))
    np.testing.assert_array_equal(refit.decision_function(table), scores)


def test_a_fit_that_diverges_is_done_again_at_a_lower_rate():
    train, test, y = hostile.make("integer counts", seed=0)
    with pytest.warns(VaekitWarning, match=r"training diverged at lr=.*; fitted again from the start at lr="):
        det = AnomalyDetector(lr=1.0, random_state=0).fit(train)
    assert det.train_config_.lr < 1.0 and np.isfinite(det.decision_function(test)).all()
    with pytest.raises(VaekitError, match=r"training diverged at lr 1e\+09, 2\.5e\+08, .* in turn; check the data"), \
            pytest.warns(VaekitWarning):
        AnomalyDetector(lr=1e9, random_state=0).fit(train)


def test_the_command_line_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    from vaekit import anomaly
    from vaekit.cli import main

    train, _, _ = hostile.make("integer counts", seed=0)
    np.save(tmp_path / "train.npy", train.astype(np.float32))
    monkeypatch.setitem(anomaly.AUTO_TRAINING, "table", {**anomaly.AUTO_TRAINING["table"], "lr": 1.0})
    assert main(["detect", "fit", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "det"),
                 "--quiet"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned and all(line.startswith("vaekit detect: warning: training diverged at --lr ") for line in warned)
    assert "fitted again from the start at --lr 0.25" in warned[0]
