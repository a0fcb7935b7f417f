"""The micro-average ROC-AUC of the classification report: every (sample, class) decision pooled."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from simreal.metrics.classification import classification_report


def test_micro_auc_is_the_pooled_binary_auc() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    logits = rng.normal(size=(40, 4)) + 1.5 * np.eye(4)[y]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    res = classification_report(y, prob)
    pooled = roc_auc_score(np.eye(4)[y].ravel(), prob.ravel())
    assert res["roc_auc_micro"] == pooled
    assert res["roc_auc_micro"] != res["roc_auc_ovr_macro"]
    assert "roc_auc_micro" not in classification_report(y[y < 3], prob[y < 3])  # a class absent: undefined
