"""PyOD parity: vaekit's predict, predict_proba (linear, unify), predict_confidence,
predict_with_rejection and compute_rejection_stats beside PyOD's BaseDetector given the same
scores. Prints the largest difference of each; 0 means PyOD's semantics exactly.

    python bench/pyod_parity.py
"""
from __future__ import annotations

import warnings

import numpy as np


def main() -> None:
    from pyod.models.base import BaseDetector

    from vaekit import AnomalyDetector

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    train = rng.normal(size=(500, 5)).astype(np.float32)
    test = np.r_[rng.normal(size=(200, 5)), rng.normal(size=(20, 5)) * 4].astype(np.float32)
    ours = AnomalyDetector(epochs=20, random_state=0, contamination=0.07).fit(train)

    class Same(BaseDetector):
        """PyOD's base detector around vaekit's scores."""

        def __init__(self, contamination=0.1):
            super().__init__(contamination=contamination)

        def fit(self, X, y=None):
            self.decision_scores_ = ours.decision_scores_
            self._set_n_classes(None)
            self._process_decision_scores()
            return self

        def decision_function(self, X):
            return ours.decision_function(X)

    pyod = Same(contamination=0.07).fit(train)

    def gap(a, b) -> float:
        return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))

    rows = [("threshold_", gap(pyod.threshold_, ours.threshold_)),
            ("predict", gap(pyod.predict(test), ours.predict(test))),
            ("predict_proba linear", gap(pyod.predict_proba(test), ours.predict_proba(test))),
            ("predict_proba unify", gap(pyod.predict_proba(test, method="unify"),
                                        ours.predict_proba(test, method="unify"))),
            ("predict_confidence", gap(pyod.predict_confidence(test), ours.predict_confidence(test)))]
    for t in (2, 4, 32):
        a, b = pyod.predict_with_rejection(test, T=t, return_stats=True), ours.predict_with_rejection(
            test, T=t, return_stats=True)
        rows.append((f"predict_with_rejection T={t} ({int((b[0] == -2).sum())} rejected)", gap(a[0], b[0])))
        rows.append((f"rejection stats T={t}", gap(a[1], b[1])))
    print(f"{'vaekit beside PyOD ' + __import__('pyod').__version__:52}{'largest difference':>20}")
    for name, value in rows:
        print(f"{name:52}{value:20.3g}")


if __name__ == "__main__":
    main()
