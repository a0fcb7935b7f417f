"""Target-side label-free selection scores: soft neighbourhood density (Saito et al., ICCV 2021) and
information maximisation (H(mean p) - mean H(p))."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
from simreal.adapt.selection import HONEST, information_maximization, selection_score, soft_neighborhood_density
from simreal.adapt.trainer import Trainer
from simreal.datasets.torchdata import ArraySource
from simreal.errors import ConfigError
from simreal.tasks.classify import ClassifyTask
from simreal.tasks.segment import SegmentTask


def _reference_snd(prob: np.ndarray, t: float) -> float:
    """The published formulation in torch (as pytorch-adapt's test writes it): off-diagonal cosine similarities
    of the softmax outputs, soft-maxed at temperature t, mean row entropy."""
    p = F.normalize(torch.from_numpy(prob).double(), dim=1)
    sim = p @ p.T
    n = len(p)
    sim = sim[~torch.eye(n, dtype=torch.bool)].view(n, n - 1)
    m = F.softmax(sim / t, dim=1)
    return float(torch.mean(-torch.sum(m * torch.log(m), dim=1)))


def test_snd_by_hand_on_three_samples() -> None:
    """Two samples predict class 0, one class 1. Each class-0 sample sees its twin at cosine 1 and the other at
    0; the class-1 sample sees both at 0 (entropy log 2)."""
    t = 0.5
    prob = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    a = 1.0 / (1.0 + math.exp(-1.0 / t))  # weight of the twin
    h_twin = -(a * math.log(a) + (1 - a) * math.log(1 - a))
    expected = (2 * h_twin + math.log(2)) / 3
    assert soft_neighborhood_density(prob, t) == pytest.approx(expected, rel=1e-12)


def test_snd_matches_the_reference_formula_and_is_scale_free() -> None:
    rng = np.random.default_rng(0)
    prob = rng.dirichlet(np.full(7, 0.3), size=64)
    got = soft_neighborhood_density(prob)
    assert got == pytest.approx(_reference_snd(prob, 0.05), rel=1e-9)
    assert soft_neighborhood_density(3.0 * prob) == pytest.approx(got, rel=1e-12)  # rows are L2-normalised
    perm = rng.permutation(64)
    assert soft_neighborhood_density(prob[perm]) == pytest.approx(got, rel=1e-12)  # order does not matter


def test_snd_grows_with_the_size_of_the_neighbourhoods() -> None:
    """Four classes, m identical confident predictions each: every sample spreads its weight evenly over its
    m - 1 twins (the other clusters get ~exp(-19) of it), so SND = log(m - 1): denser target clusters score
    higher, which is what the criterion rewards."""
    centres = np.eye(4) * 0.9 + 0.025
    got = [soft_neighborhood_density(np.repeat(centres, m, axis=0)) for m in (3, 5, 9)]
    assert got == pytest.approx([math.log(2), math.log(4), math.log(8)], abs=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        soft_neighborhood_density(centres[:1])


def test_information_maximization_by_hand_and_its_extremes() -> None:
    """Two rows, [0.9, 0.1] and [0.5, 0.5]: mean [0.7, 0.3]. Confident and diverse predictions score log K,
    a model that predicts one class for everything (collapse) or is uniform everywhere scores 0."""
    h = lambda *q: -sum(x * math.log(x) for x in q)  # noqa: E731
    prob = np.array([[0.9, 0.1], [0.5, 0.5]])
    assert information_maximization(prob) == pytest.approx(h(0.7, 0.3) - (h(0.9, 0.1) + h(0.5, 0.5)) / 2, rel=1e-12)
    assert information_maximization(np.eye(5)) == pytest.approx(math.log(5))
    assert information_maximization(np.tile([1.0, 0.0, 0.0], (6, 1))) == pytest.approx(0.0, abs=1e-12)
    assert information_maximization(np.full((6, 3), 1 / 3)) == pytest.approx(0.0, abs=1e-12)
    collapsed = np.tile([0.96, 0.02, 0.02], (30, 1))
    confident = np.repeat(np.eye(3) * 0.94 + 0.02, 10, axis=0)
    assert information_maximization(confident) > information_maximization(collapsed) + 0.8


@pytest.mark.parametrize("policy", ["snd", "im"])
def test_target_side_policies_are_honest_and_score_the_target_through_the_model(policy: str) -> None:
    assert policy in HONEST  # label-free: reports do not flag it as oracle selection
    torch.manual_seed(0)
    task = ClassifyTask(3)
    model = task.build_model("smallcnn", 1, (8, 8), width=4)
    tgt = ArraySource("t", 1, torch.rand(12, 1, 8, 8), None, labelled=False)
    model.eval()
    with torch.no_grad():
        logits, _ = model(tgt.images)
    prob = torch.softmax(logits.float(), 1).numpy()
    expected = soft_neighborhood_density(prob) if policy == "snd" else information_maximization(prob)
    assert selection_score(policy, task, model, None, tgt, None) == pytest.approx(expected, rel=1e-6)


def _trainer(task: object, policy: str, with_target: bool, tmp_path: Path, arch: str = "smallcnn") -> Trainer:
    src = ArraySource("s", 0, torch.rand(16, 1, 8, 8), [i % 2 for i in range(16)])
    sources = [(src, "source")]
    if with_target:
        sources.append((ArraySource("t", 1, torch.rand(16, 1, 8, 8) + 0.5, None, labelled=False), "target"))
    model = task.build_model(arch, 1, (8, 8), width=4)  # type: ignore[attr-defined]
    return Trainer(task, model, sources, MethodConfig(name="source_only"), OptimConfig(steps=4, batch_per_domain=4),
                   SelectionConfig(policy=policy, eval_every=2), progress=False, val=src)


@pytest.mark.parametrize("policy", ["snd", "im"])
def test_selection_runs_and_keeps_the_best_scoring_step(tmp_path: Path, policy: str) -> None:
    torch.manual_seed(0)
    res = _trainer(ClassifyTask(2), policy, True, tmp_path).fit()
    evals = [r for r in res.history if r.get("eval")]
    key = f"select/{policy}"
    assert [r["step"] for r in evals] == [2, 4] and all(key in r for r in evals)
    best = max(evals, key=lambda r: (r[key], -r["step"]))
    assert res.selection["policy"] == policy and not res.selection["uses_target_labels"]
    assert res.selection["step"] == best["step"] and res.selection["score"] == best[key]


@pytest.mark.parametrize("policy", ["snd", "im"])
def test_target_side_policies_need_a_target_domain_and_a_classifier(tmp_path: Path, policy: str) -> None:
    with pytest.raises(ConfigError, match=f"{policy}: needs a domain with role 'target'"):
        _trainer(ClassifyTask(2), policy, False, tmp_path)
    with pytest.raises(ConfigError, match="task 'segment'"):
        _trainer(SegmentTask(2), policy, True, tmp_path, "unet_small")
