"""Classification metrics: accuracy, per-class accuracy, confusion matrix, ROC-AUC and AP
(binary; multi-class one-vs-rest and one-vs-one, macro and prevalence-weighted, and the micro
average) via scikit-learn."""

from __future__ import annotations

import warnings
from pathlib import Path
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
            # rows that already sum to 1 (softmax outputs) are used as they are: dividing again moves
            # scores by an ulp, breaks exact ties and shifts AUC/AP away from scikit-learn's
            rows = prob.sum(1, keepdims=True)
            p = prob if np.allclose(rows, 1.0, rtol=0, atol=1e-6) else prob / rows
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


def classification_eval(class_names: list[str], preds: list[dict[str, Any]], targets: list[Any],
                        out: Path) -> dict[str, Any]:
    """:func:`classification_report` of task predictions (``prob`` per batch) plus confusion, ROC and PR
    plots in ``out``; unlabelled samples (target None) are left out."""
    from simreal.metrics.plots import save_confusion, save_curves
    from simreal.metrics.ranking import pr_curve, roc_curve

    prob = np.concatenate([p["prob"] for p in preds])
    keep = np.array([t is not None for t in targets])
    y = np.array([t for t in targets if t is not None], dtype=np.int64)
    prob = prob[keep]
    res = classification_report(y, prob, class_names)
    save_confusion(out / "confusion.png", np.array(res["confusion_matrix"]), class_names)
    rocs, prs = [], []
    for i, name in enumerate(class_names):
        yi = (y == i).astype(int)
        if 0 < yi.sum() < len(yi):
            fpr, tpr, a = roc_curve(yi, prob[:, i])
            r, p, ap = pr_curve(yi, prob[:, i])
            rocs.append((fpr, tpr, f"{name} (AUC {a:.3f})"))
            prs.append((r, p, f"{name} (AP {ap:.3f})"))
    if len(rocs) == len(class_names) > 2:  # micro (pooled decisions) and macro (mean of the class curves)
        fpr, tpr, a = roc_curve(np.eye(len(class_names))[y].ravel(), prob.ravel())
        grid = np.linspace(0.0, 1.0, 201)
        mean_tpr = np.mean([np.interp(grid, f, t) for f, t, _ in rocs], axis=0)
        rocs += [(fpr, tpr, f"micro-average (AUC {a:.3f})"),
                 (grid, mean_tpr, f"macro-average (AUC {res.get('roc_auc_ovr_macro', float('nan')):.3f})")]
    if rocs:
        save_curves(out / "roc.png", rocs, "false positive rate", "true positive rate", "ROC (one vs rest)", True)
        save_curves(out / "pr.png", prs, "recall", "precision", "precision-recall (one vs rest)")
    return res
