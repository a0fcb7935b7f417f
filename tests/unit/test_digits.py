import numpy as np
import pytest
import torch

from simreal.bench.digits import DigitsConfig, format_table, k_per_class, run_table
from simreal.bench.digits_data import digit_fonts, real_digits_split, render_digits


def test_rendered_digits_have_load_digits_format_and_are_deterministic() -> None:
    assert len(digit_fonts()) >= 10
    x, y = render_digits(3, seed=5)
    assert x.shape == (30, 8, 8) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 16 and np.all(x == np.round(x))
    assert list(np.bincount(y)) == [3] * 10
    x2, _ = render_digits(3, seed=5)
    assert np.array_equal(x, x2)
    assert not np.array_equal(x, render_digits(3, seed=6)[0])


def test_real_split_per_seed_reproducible_and_disjoint() -> None:
    xa, ya, xt, yt = real_digits_split(0)
    assert len(xa) + len(xt) == 1797
    xa2, *_ = real_digits_split(0)
    assert np.array_equal(xa, xa2)
    xb, *_ = real_digits_split(1)  # another seed, another split of the real digits
    assert not np.array_equal(xa, xb)
    idx = k_per_class(ya, 3, 0)
    assert list(np.bincount(ya[idx])) == [3] * 10


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_tiny_table_runs_and_dann_beats_chance(monkeypatch: pytest.MonkeyPatch) -> None:
    import simreal.refine.arrays as arrays
    from simreal.bench.digits import ADAPTED_SC, _accuracy, _t

    judges: list[tuple[object, int | None]] = []
    refiners: list[tuple[bool, int]] = []
    real_consistency, real_refine = arrays.array_consistency, arrays.refine_arrays

    def spy_consistency(classifier: object, *a: object, **kw: object) -> object:
        judges.append((classifier, kw.get("num_classes")))
        return real_consistency(classifier, *a, **kw)

    def spy_refine(*a: object, **kw: object) -> object:
        refiners.append((bool(kw["settings"].conditional), int(kw["steps"])))
        return real_refine(*a, **kw)

    import simreal.bench.digits as digits

    runs: list[dict[str, object]] = []  # every classifier training: method, sources, first and last weights

    class SpyTrainer(digits.Trainer):
        def __init__(self, task: object, model: torch.nn.Module, sources: list, method: object, *a: object,
                     **kw: object) -> None:
            runs.append({"method": method.name, "sources": [src.name for src, _ in sources],
                         "pretrained": kw.get("pretrained", False), "start": _weights(model)})
            super().__init__(task, model, sources, method, *a, **kw)

        def fit(self) -> object:
            res = super().fit()
            runs[-1]["end"] = _weights(res.model)
            return res

    monkeypatch.setattr(arrays, "array_consistency", spy_consistency)
    monkeypatch.setattr(arrays, "refine_arrays", spy_refine)
    monkeypatch.setattr(digits, "Trainer", SpyTrainer)
    cfg = DigitsConfig(seeds=(0,), n_per_class=60, steps=150, adda_steps=50, finetune_steps=30, width=8,
                       rows=("source only", "DANN", "ADDA", "refined + SC", "refined + SC + DANN",
                             ADAPTED_SC, f"{ADAPTED_SC} + DANN", "fine-tune (k real/class)"), refine_steps=20,
                       adapted_refine_steps=30,
                       refine_checkpoints=(10,))
    res = run_table(cfg, log=lambda s: None)
    # two refiners (the + DANN rows reuse them): the source-only judge with unconditional discriminators, then
    # the DANN model as the judge (a copy: it scores exactly the DANN row) with class-conditional ones
    assert refiners == [(False, 20), (True, 30)] and len(judges) == 2 and judges[1][1] == 10  # own steps
    _, _, xt, yt = real_digits_split(0)
    assert _accuracy(judges[1][0], _t(xt), yt) == res["rows"]["DANN"][0]
    assert _accuracy(judges[0][0], _t(xt), yt) == res["rows"]["source only"][0]
    assert res["rows"][f"{ADAPTED_SC} + DANN"][0] is not None
    # CyCADA's feature stage: each "+ DANN" row trains DANN on the refined digits starting from the weights of the
    # classifier trained on those refined digits (not from scratch, not from the source-only model)
    # (each variant: a classifier on its checkpoint, one on its final output, then DANN)
    on_refined = [(r["method"], r["pretrained"]) for r in runs if r["sources"] == ["refined", "real"]]
    assert on_refined == [("source_only", False), ("source_only", False), ("dann", True)] * 2
    danns = [i for i, r in enumerate(runs) if r["method"] == "dann" and r["sources"] == ["refined", "real"]]
    for i in danns:
        plain, dann = runs[i - 1], runs[i]
        assert all(torch.equal(dann["start"][k], v) for k, v in plain["end"].items())
        assert not all(torch.equal(dann["end"][k], v) for k, v in plain["end"].items())
    assert res["rows"]["DANN"][0] > 0.3  # loose: 10 classes, tiny budget
    table = format_table(res)
    assert "DANN" in table and "Model selection: `last`; no row used target labels" in table
    assert res["selection"]["DANN"] == [("last", False)]
    # the SC refiner is trained once (the + DANN row reuses it) and scored at its checkpoint and at the end;
    # the raw synthetic set is a point with the source-only accuracy
    pts = {(p["variant"], p["step"]): p for p in res["refiner_selection"]}
    adapted = "CycleGAN + SC (adapted judge + cond. D)"
    assert set(pts) == {("CycleGAN + SC", 10), ("CycleGAN + SC", 20), (adapted, 10), (adapted, 30),
                        ("raw synthetic", 0)}
    assert pts[(adapted, 30)]["accuracy"] == res["rows"][ADAPTED_SC][0]
    assert pts[("raw synthetic", 0)]["accuracy"] == res["rows"]["source only"][0]
    assert pts[("CycleGAN + SC", 20)]["accuracy"] == res["rows"]["refined + SC"][0]
    assert all(p["task_fid"] > 0 for p in pts.values())
    assert "Spearman ρ(task-space FID, accuracy) over 5 points" in table
    # the line is built from what the trainers report, not a fixed string
    from simreal.bench.digits import selection_line

    line = selection_line({"source only": [("last", False)], "oracle": [("target_val", True)]})
    assert "`last`, `target_val`" in line and "TARGET LABELS USED FOR SELECTION by: oracle" in line
