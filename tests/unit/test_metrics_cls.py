import numpy as np
from sklearn import metrics as skm

from simreal.metrics.classification import classification_report


def test_binary_matches_sklearn() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    s = np.array([0.1, 0.6, 0.7, 0.4, 0.9, 0.2])
    r = classification_report(y, np.stack([1 - s, s], 1), ["neg", "pos"])
    assert r["roc_auc"] == skm.roc_auc_score(y, s)
    assert r["average_precision"] == skm.average_precision_score(y, s)
    assert r["accuracy"] == 4 / 6
    assert r["confusion_matrix"] == [[2, 1], [1, 2]]
    assert r["per_class_accuracy"] == {"neg": 2 / 3, "pos": 2 / 3}


def test_multiclass_ovr_ovo_macro_weighted() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 2, 2, 1, 0, 2, 2, 1, 0])
    p = rng.dirichlet(np.ones(3), size=10)
    r = classification_report(y, p)
    for mc in ("ovr", "ovo"):
        for avg in ("macro", "weighted"):
            assert np.isclose(r[f"roc_auc_{mc}_{avg}"], skm.roc_auc_score(y, p, multi_class=mc, average=avg))
    assert np.isclose(r["average_precision_macro"], skm.average_precision_score(np.eye(3)[y], p, average="macro"))


def test_missing_class_gives_defined_auc() -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.1, 0.5, 0.4]])
    r = classification_report(y, p)
    assert r["per_class_accuracy"]["2"] is None
    assert r["roc_auc_ovr_macro"] == 1.0 and "auc_note" in r


def test_softmax_rows_are_not_renormalised_ties_kept_exactly() -> None:
    """Rows that already sum to 1 go to scikit-learn as they are: exact ties stay ties, so every AUC/AP equals
    scikit-learn's on the same scores bit for bit (a second division moved them by up to 1.4e-3)."""
    import numpy as np
    import torch
    from sklearn import metrics as skm

    from simreal.metrics.classification import classification_report

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    # a confident float32 model: many probabilities saturate to exactly 1.0 or share a float32 value, and
    # float32 rows sum to 1 only within an ulp (what a network's softmax gives)
    logits = torch.from_numpy(rng.normal(size=(300, 4)) * 12 + 6 * np.eye(4)[y]).float()
    prob = torch.softmax(logits, 1).double().numpy()
    assert len(np.unique(prob[:, 0])) < 295 and not np.all(prob.sum(1) == 1.0)
    res = classification_report(y, prob)
    for mc in ("ovr", "ovo"):
        for avg in ("macro", "weighted"):
            assert res[f"roc_auc_{mc}_{avg}"] == skm.roc_auc_score(y, prob, multi_class=mc, average=avg,
                                                                   labels=[0, 1, 2, 3])
    for i in range(4):
        assert res["average_precision_per_class"][str(i)] == skm.average_precision_score(y == i, prob[:, i])
