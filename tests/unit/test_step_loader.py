"""Batches made ahead of the loop in data-loader worker processes are the batches of the loop: the same
tensors for every step (train and refine), so ``data.workers`` changes speed, never results."""

from __future__ import annotations

from pathlib import Path

import torch

from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
from simreal.adapt.trainer import PhaseBatches, Trainer, plan_phases
from simreal.datasets import Dataset
from simreal.datasets.torchdata import ArraySource, step_loader
from simreal.refine.config import RefinerConfig
from simreal.refine.data import ImageSet
from simreal.refine.fit import RefineBatches
from simreal.tasks.classify import ClassifyTask


def _sources() -> list[tuple[ArraySource, str]]:
    g = torch.Generator().manual_seed(0)
    return [(ArraySource("a", 0, torch.rand(20, 1, 8, 8, generator=g), [i % 2 for i in range(20)]), "source"),
            (ArraySource("b", 1, torch.rand(12, 1, 8, 8, generator=g), None, labelled=False), "target")]


def test_worker_batches_equal_in_loop_batches() -> None:
    src = _sources()
    method = MethodConfig(name="adda", adda_steps=4, disc_hidden=[8])
    phases = plan_phases(method, OptimConfig(steps=3), src)
    make = PhaseBatches(phases, seed=5, per_domain=4)
    got = list(step_loader(make, 1, 7, workers=2))
    assert len(got) == 6
    for g, item in zip(range(1, 7), got, strict=True):
        want = make(g)
        if g >= 3:  # the ADDA phase: source and target batches
            assert len(item) == 2 and torch.equal(item[1].x, want[1].x)
            item, want = item[0], want[0]
        assert torch.equal(item.x, want.x) and item.targets == want.targets
        assert torch.equal(item.domain, want.domain) and torch.equal(item.labelled, want.labelled)


def test_training_with_workers_gives_the_same_weights() -> None:
    out = []
    for workers in (0, 2):
        torch.manual_seed(0)
        task = ClassifyTask(2)
        model = task.build_model("smallcnn", 1, (8, 8), width=4)
        tr = Trainer(task, model, _sources(), MethodConfig(name="dann", disc_hidden=[8]),
                     OptimConfig(steps=6, batch_per_domain=4), SelectionConfig(policy="last"), seed=1,
                     progress=False, workers=workers)
        out.append(tr.fit().model.state_dict())
    for k in out[0]:
        assert torch.equal(out[0][k], out[1][k]), k


def test_refine_batches_from_workers(tmp_path: Path) -> None:
    from tests.e2e.test_refine_cli import make_dataset

    cfg = RefinerConfig.model_validate({"data": {"crop_size": 24}})
    a = ImageSet(Dataset.open(make_dataset(tmp_path / "a", n=3, size=32)), 3, cfg.data, cfg.crops, "source")
    b = ImageSet(Dataset.open(make_dataset(tmp_path / "b", n=2, size=32, seed=1)), 3, cfg.data, cfg.crops, "target")
    make = RefineBatches(a, b, seed=3, batch_size=2, iterations_per_epoch=2)
    for it, item in zip(range(0, 4), step_loader(make, 0, 4, workers=2), strict=True):
        want = make(it)
        assert torch.equal(item[0], want[0]) and torch.equal(item[1], want[1])
    # rank shares: the two halves of a batch of 2 are the whole batch
    halves = [RefineBatches(a, b, 3, 2, 2, shard=(r, 2))(1) for r in (0, 1)]
    assert torch.equal(torch.cat([h[0] for h in halves]), make(1)[0])
    assert torch.equal(torch.cat([h[1] for h in halves]), make(1)[1])
