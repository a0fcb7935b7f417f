"""Every tensor a training step makes lands on the model's device, tested without a GPU: PyTorch's ``meta``
device stands in for "another device". Meta tensors carry shapes and devices but no data, and an operation
mixing a meta tensor with a host tensor of one or more dimensions fails exactly as a CUDA/CPU mix does, so a
loss or step that builds a target with ``torch.tensor(...)`` (no ``device=``) fails here.

What this cannot show: numerics on a real GPU, and code paths that need values on the device (detection's
box matching reads the anchors, so detection is checked with the model on the host and in float64, which
exercises its explicit host/device copies)."""

from __future__ import annotations

import copy

import pytest
import torch

from simreal.adapt.steps import adda_step, dann_step, supervised_step
from simreal.datasets.torchdata import Batch
from simreal.nn.heads import DomainDiscriminator
from simreal.refine.config import RefinerConfig
from simreal.refine.models import build_model
from simreal.tasks.classify import ClassifyTask
from simreal.tasks.reid import ReidTask
from simreal.tasks.segment import SegmentTask

META = torch.device("meta")


def _batch(n: int, size: int, targets: list) -> Batch:
    labelled = torch.tensor([t is not None for t in targets])
    return Batch(torch.rand(n, 3, size, size), targets, torch.tensor([i % 2 for i in range(n)]), labelled)


def _on_meta(model: torch.nn.Module, task, batch: Batch) -> None:
    model.to(META).train()
    b = batch.to(META)
    assert b.x.device == META and b.domain.device == META and b.labelled.device.type == "cpu"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rec = supervised_step(model, task, b, opt)
    assert rec["loss"].device == META
    disc = DomainDiscriminator(model.feature_dim, 2, (8,)).to(META)
    rec = dann_step(model, disc, task, b, 0.5, torch.optim.Adam([*model.parameters(), *disc.parameters()]))
    assert rec["domain_loss"].device == META and rec["disc_acc/1"].device == META


def test_classify_steps_on_another_device() -> None:
    task = ClassifyTask(2)
    model = task.build_model("smallcnn", 3, (16, 16), width=4)
    _on_meta(model, task, _batch(4, 16, [0, 1, None, 1]))
    src = copy.deepcopy(model).eval()
    disc = DomainDiscriminator(model.feature_dim, 2, (8,)).to(META)
    enc = [p for p in model.parameters() if not any(p is q for q in model.head_parameters())]
    rec = adda_step(src, model, disc, torch.rand(2, 3, 16, 16, device=META), torch.rand(2, 3, 16, 16, device=META),
                    torch.optim.Adam(disc.parameters()), torch.optim.Adam(enc))
    assert rec["loss"].device == META


def test_segment_steps_on_another_device() -> None:
    task = SegmentTask(2, ["a", "b"], class_weights=[1.0, 2.0, 3.0])
    model = task.build_model("unet_small", 3, (16, 16), width=4)
    mask = torch.randint(0, 3, (16, 16), dtype=torch.uint8)
    _on_meta(model, task, _batch(4, 16, [{"mask": mask}, None, {"mask": mask}, {"mask": mask}]))


def test_reid_steps_on_another_device() -> None:
    task = ReidTask(num_ids=3, triplet_weight=1.0)
    model = task.build_model("smallcnn", 3, (16, 16), width=4, embedding_dim=8)
    tg = [{"pid": i % 2, "cam": 0, "split": None, "label": i % 2} for i in range(4)]
    _on_meta(model, task, _batch(4, 16, tg))


@pytest.mark.parametrize("kind", ["cyclegan", "cut"])
def test_refiner_steps_on_another_device(kind: str) -> None:
    cfg = RefinerConfig.model_validate({"model": kind, "net": {"ngf": 4, "ndf": 4, "n_blocks": 1},
                                        "train": {"pool_size": 2}, "cut": {"num_patches": 8},
                                        "data": {"crop_size": 24}, "loss": {"lambda_mask_identity": 1.0}})
    model = build_model(cfg, 3).to(META)
    a, b = torch.rand(2, 3, 24, 24, device=META), torch.rand(2, 3, 24, 24, device=META)
    losses = model.train_step(a, b, torch.ones(2, 1, 24, 24, device=META), None, 0)
    assert losses and all(v.device == META for v in losses.values())
    assert all(t.device == META for t in model.extra_tensors().values())


def test_detection_loss_copies_between_host_and_device() -> None:
    """Box matching runs on the host, the loss on the output's device and dtype: float64 outputs (another
    dtype, the closest a CPU-only machine gets) give a float64 loss equal to the float32 one, and bfloat16
    outputs (mixed precision) a float32 loss close to it."""
    import numpy as np

    from simreal.tasks.detect import DetectTask

    task = DetectTask(1, ["obj"], anchors=[[8.0, 8.0], [16.0, 12.0]])
    model = task.build_model("squeezedet_tiny", 3, (32, 32), width=4)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    tg = [{"boxes": np.array([[4.0, 4.0, 14.0, 12.0]]), "labels": np.array([0]), "ignore": np.array([False])},
          {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, dtype=np.int64), "ignore": np.zeros(0, dtype=bool)}]
    lab = torch.tensor([True, True])
    model.eval()
    out32, _ = model(x)
    loss32 = task.loss(out32, tg, lab)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16, _ = model(x)
        loss16 = task.loss(out16, tg, lab)
    assert out16["raw"].dtype == torch.bfloat16 and loss16.dtype == torch.float32
    assert float(loss16.detach()) == pytest.approx(float(loss32.detach()), rel=0.05)
    out64, _ = model.double()(x.double())
    loss64 = task.loss(out64, tg, lab)
    assert loss32.dtype == torch.float32 and loss64.dtype == torch.float64
    assert float(loss64.detach()) == pytest.approx(float(loss32.detach()), rel=1e-4)
