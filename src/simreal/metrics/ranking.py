"""ROC and precision-recall curves (scikit-learn) for plots and tables."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, AUC) of binary labels ``y`` against ``score``."""
    fpr, tpr, _ = skm.roc_curve(y, score)
    return fpr, tpr, float(skm.auc(fpr, tpr))


def pr_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(recall, precision, AP) with AP the step sum of scikit-learn (not the trapezoidal PR-AUC)."""
    p, r, _ = skm.precision_recall_curve(y, score)
    return r, p, float(skm.average_precision_score(y, score))
