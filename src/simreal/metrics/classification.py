"""Classification metrics: accuracy, per-class accuracy, confusion matrix, ROC-AUC and AP
(binary; multi-class one-vs-rest and one-vs-one, macro and prevalence-weighted, and the micro
average) via scikit-learn."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm


def classification_report(y_true: np.ndarray, prob: np.ndarray, class_names: list[str] | None = None) -> dict[str, Any]:
    """All classification figures from true class indices (N,) and probabilities (N, K) summing to 1.

    AUC/AP of a class absent from ``y_true`` is undefined and left out (reported as None); the
    multi-class AUCs pass ``labels=`` so a missing class does not shift columns.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    k = prob.shape[1]
    names = class_names or [str(i) for i in range(k)]
    pred = prob.argmax(1)
    cm = skm.confusion_matrix(y_true, pred, labels=list(range(k)))
    support = cm.sum(1)
    per_class = {names[i]: (float(cm[i, i] / support[i]) if support[i] else None) for i in range(k)}
    out: dict[str, Any] = {
        "n": int(len(y_true)), "accuracy": float((pred == y_true).mean()) if len(y_true) else float("nan"),
        "per_class_accuracy": per_class, "confusion_matrix": cm.tolist(), "class_names": names,
    }
    present = np.unique(y_true)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if k == 2:
            if len(present) == 2:
                out["roc_auc"] = float(skm.roc_auc_score(y_true, prob[:, 1]))
                out["average_precision"] = float(skm.average_precision_score(y_true, prob[:, 1]))
        elif len(present) >= 2:
            p = prob / prob.sum(1, keepdims=True)
            if len(present) == k:
                for mc in ("ovr", "ovo"):
                    for avg in ("macro", "weighted"):
                        out[f"roc_auc_{mc}_{avg}"] = float(
                            skm.roc_auc_score(y_true, p, multi_class=mc, average=avg, labels=list(range(k))))
            else:  # restrict to present classes (renormalised) so sklearn's checks hold
                sub = p[:, present] / p[:, present].sum(1, keepdims=True)
                yy = np.searchsorted(present, y_true)
                for mc in ("ovr", "ovo"):
                    for avg in ("macro", "weighted"):
                        out[f"roc_auc_{mc}_{avg}"] = float(
                            skm.roc_auc_score(yy, sub[:, 1]) if len(present) == 2
                            else skm.roc_auc_score(yy, sub, multi_class=mc, average=avg))
                out["auc_note"] = f"AUC over the {len(present)} classes present in the data"
            onehot = np.eye(k)[y_true]
            if len(present) == k:  # micro average: every (sample, class) decision pooled (one vs rest)
                out["roc_auc_micro"] = float(skm.roc_auc_score(onehot, p, average="micro"))
            ap = {names[i]: (float(skm.average_precision_score(onehot[:, i], p[:, i])) if i in present else None)
                  for i in range(k)}
            out["average_precision_per_class"] = ap
            vals = [(v, int(support[i])) for i, v in enumerate(ap.values()) if v is not None]
            out["average_precision_macro"] = float(np.mean([v for v, _ in vals]))
            out["average_precision_weighted"] = float(np.average([v for v, _ in vals], weights=[s for _, s in vals]))
    return out
