"""Multi-level domain adaptation: the update of every parameter recomputed by hand (each level's gradient
reaching the network is -alpha_l times the gradient arriving at its GRL, scaled by the level's weight;
RoI rows take their image's domain), the DA-Faster consistency term, the single-level special case equal
to plain DANN, discriminator kinds per model family, and unknown level names."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simreal.adapt.config import MethodConfig
from simreal.adapt.multilevel import build_multilevel, multilevel_losses, multilevel_step, resolve_levels
from simreal.adapt.steps import dann_step
from simreal.datasets.torchdata import ArraySource, Batch
from simreal.errors import ConfigError
from simreal.nn.heads import DomainDiscriminator
from simreal.tasks.base import FeatureLevel, TaskModel
from simreal.tasks.classify import ClassifyTask


class Tiny(TaskModel):
    """conv1 -> conv2 -> pool -> fc, plus two "RoIs" per image (left/right halves of conv2, through ``roi``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 5, 3, stride=2, padding=1)
        self.roi = nn.Linear(5, 3)
        self.fc = nn.Linear(5, 2)
        self.feature_dim = 5
        self.roi_index = torch.zeros(0, dtype=torch.long)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv2(torch.tanh(self.conv1(x))))

    def pooled(self, enc: torch.Tensor) -> torch.Tensor:
        return enc.mean((2, 3))

    def decode(self, enc: torch.Tensor) -> torch.Tensor:
        halves = torch.stack([enc[..., : enc.shape[-1] // 2].mean((2, 3)), enc[..., enc.shape[-1] // 2:].mean((2, 3))],
                             1).reshape(-1, 5)
        self.roi_index = torch.arange(len(enc)).repeat_interleave(2)
        return self.fc(enc.mean((2, 3))) + 0.1 * self.roi(halves).reshape(len(enc), 2, 3).sum((1, 2))[:, None]

    def head_modules(self) -> list[nn.Module]:
        return [self.fc]

    def feature_levels(self) -> dict[str, FeatureLevel]:
        return {**super().feature_levels(), "c1": FeatureLevel("conv1", "map"), "c2": FeatureLevel("conv2", "map"),
                "roi": FeatureLevel("roi", "roi", index="roi_index")}


def _batch() -> Batch:
    g = torch.Generator().manual_seed(3)
    return Batch(torch.randn(6, 3, 8, 8, generator=g), [0, 1, None, None, 1, None], torch.tensor([0, 0, 1, 1, 2, 2]),
                 torch.tensor([True, True, False, False, True, False]))


def _method() -> MethodConfig:
    return MethodConfig(name="dann", alpha=0.5, schedule="constant", gamma=10.0, disc_hidden=[6], levels=[
        {"name": "c1", "discriminator": "patch", "alpha": 0.3, "weight": 0.7, "hidden": [5]},
        {"name": "c2", "discriminator": "mlp", "alpha": 0.05, "hidden": [4]},
        {"name": "pooled", "weight": 0.4, "alpha": 1.2, "schedule": "dann"},
        {"name": "roi", "alpha": 0.8, "weight": 0.25}])


def test_multilevel_update_matches_hand_computation() -> None:
    torch.manual_seed(0)
    model, method, b = Tiny(), _method(), _batch()
    src = ArraySource("s", 0, b.x[:2], [0, 1])
    disc = build_multilevel(method, model, ClassifyTask(2), [src, ArraySource("t", 1, b.x[2:4], None),
                                                              ArraySource("u", 2, b.x[4:], None)], seed=0)
    assert {n: h.kind for n, h in disc.heads.items()} == {"c1": "patch", "c2": "mlp", "pooled": "mlp", "roi": "mlp"}
    m2, d2 = copy.deepcopy(model), copy.deepcopy(disc)
    step, total, lr = 7, 20, 0.1
    opt = torch.optim.SGD(list(model.parameters()) + list(disc.parameters()), lr=lr)
    multilevel_step(model, disc, ClassifyTask(2), b, step, total, opt)

    # by hand, without any GRL: each level's loss L_l on its own features, domain per row
    h1 = m2.conv1(b.x)
    enc = torch.tanh(m2.conv2(torch.tanh(h1)))
    h2 = m2.conv2(torch.tanh(h1))
    out = m2.decode(enc)
    task = F.cross_entropy(out[b.labelled], torch.tensor([0, 1, 1]))
    dom = b.domain
    losses = {"c1": F.cross_entropy(d2.heads["c1"](h1), dom[:, None, None].expand(6, 8, 8)),
              "c2": F.cross_entropy(d2.heads["c2"](h2), dom),
              "pooled": F.cross_entropy(d2.heads["pooled"](enc.mean((2, 3))), dom)}
    halves = torch.stack([enc[..., :2].mean((2, 3)), enc[..., 2:].mean((2, 3))], 1).reshape(-1, 5)
    losses["roi"] = F.cross_entropy(d2.heads["roi"](m2.roi(halves)), dom.repeat_interleave(2))
    p = step / total
    alpha = {"c1": 0.3, "c2": 0.05, "pooled": 1.2 * (2 / (1 + math.exp(-10 * p)) - 1), "roi": 0.8}
    weight = {"c1": 0.7, "c2": 1.0, "pooled": 0.4, "roi": 0.25}
    params = list(m2.parameters())
    g = list(torch.autograd.grad(task, params, retain_graph=True, allow_unused=True))
    g = [torch.zeros_like(p) if x is None else x for x, p in zip(g, params, strict=True)]
    for name, loss in losses.items():
        gl = torch.autograd.grad(weight[name] * loss, params + list(d2.heads[name].parameters()), retain_graph=True,
                                 allow_unused=True)
        for i in range(len(params)):
            if gl[i] is not None:
                g[i] = g[i] - alpha[name] * gl[i]  # the reversed gradient, scaled by the level's alpha
        for q, gq in zip(d2.heads[name].parameters(), gl[len(params):], strict=True):
            with torch.no_grad():
                q -= lr * gq  # each discriminator descends its own weighted loss
    expect = [p - lr * gp for p, gp in zip(params, g, strict=True)]
    for got, want in zip(model.parameters(), expect, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    for got, want in zip(disc.parameters(), d2.parameters(), strict=True):
        assert torch.allclose(got, want, atol=1e-6)


def test_consistency_term_is_the_da_faster_formula() -> None:
    torch.manual_seed(0)
    model, b = Tiny(), _batch()
    method = MethodConfig(name="dann", schedule="constant", levels=[{"name": "c2", "hidden": [4]},
                                                                     {"name": "roi", "hidden": [4]}],
                          consistency={"image": "c2", "instance": "roi", "weight": 0.3})
    srcs = [ArraySource(str(i), i, b.x[2 * i:2 * i + 2], None) for i in range(3)]
    disc = build_multilevel(method, model, ClassifyTask(2), srcs, 0)
    assert disc.heads["c2"].kind == "patch"
    total, task, dom, rec = multilevel_losses(model, disc, ClassifyTask(2), b, 0, 10)
    with torch.no_grad():
        p_img = torch.softmax(disc.heads["c2"](model.conv2(torch.tanh(model.conv1(b.x)))), 1).mean((2, 3))
        enc = model.encode(b.x)
        halves = torch.stack([enc[..., :2].mean((2, 3)), enc[..., 2:].mean((2, 3))], 1).reshape(-1, 5)
        p_ins = torch.softmax(disc.heads["roi"](model.roi(halves)), 1)
        want = (p_img.repeat_interleave(2, 0) - p_ins).pow(2).sum(1).mean()
    assert math.isclose(rec["consistency_loss"], float(want), rel_tol=1e-5)
    assert math.isclose(float(total.detach()), float((task + dom).detach()) + 0.3 * float(want), rel_tol=1e-5)


def test_single_pooled_level_is_plain_dann() -> None:
    """The paper's setting as a level list gives exactly the update of the default DANN discriminator."""
    torch.manual_seed(0)
    model, b = Tiny(), _batch()
    plain = DomainDiscriminator(5, 3, (6,))
    method = MethodConfig(name="dann", alpha=0.4, schedule="constant", disc_hidden=[6],
                          levels=[{"name": "pooled", "discriminator": "mlp"}])
    srcs = [ArraySource(str(i), i, b.x[2 * i:2 * i + 2], None) for i in range(3)]
    ml = build_multilevel(method, copy.deepcopy(model), ClassifyTask(2), srcs, 0)
    ml.heads["pooled"].net.load_state_dict(plain.state_dict())
    m2 = copy.deepcopy(model)
    dann_step(model, plain, ClassifyTask(2), b, 0.4, torch.optim.SGD(list(model.parameters()) +
                                                                     list(plain.parameters()), lr=0.1))
    multilevel_step(m2, ml, ClassifyTask(2), b, 0, 10, torch.optim.SGD(list(m2.parameters()) + list(ml.parameters()),
                                                                        lr=0.1))
    for a, c in zip(model.parameters(), m2.parameters(), strict=True):
        assert torch.allclose(a, c, atol=1e-6)


def test_levels_of_the_classifier_and_unet_and_kinds() -> None:
    from simreal.tasks.segment import SegmentTask

    torch.manual_seed(0)
    seg = SegmentTask(2)
    unet = seg.build_model("unet_small", 3, (32, 32), width=4)
    assert {"pooled", "enc1", "enc4", "dec1", "dec3", "output"} <= set(unet.feature_levels())
    method = MethodConfig(name="dann", levels=[{"name": "enc4"}, {"name": "dec3"}, {"name": "output"}])
    x = torch.rand(4, 3, 32, 32)
    srcs = [ArraySource("a", 0, x[:2], None), ArraySource("b", 1, x[2:], None)]
    disc = build_multilevel(method, unet, seg, srcs, 0)
    assert {n: h.kind for n, h in disc.heads.items()} == {"enc4": "patch", "dec3": "patch", "output": "conv"}
    assert disc.heads["output"].net[0].in_channels == 3  # background + 2 classes, softmax output space
    tgt = {"mask": torch.zeros(32, 32, dtype=torch.uint8), "present": torch.zeros(2, dtype=torch.bool)}
    b = Batch(x, [tgt, None, tgt, None], torch.tensor([0, 0, 1, 1]), torch.tensor([True, False, True, False]))
    rec = multilevel_step(unet, disc, seg, b, 0, 10, torch.optim.Adam(list(unet.parameters()) +
                                                                      list(disc.parameters())))
    assert {"domain_loss/enc4", "domain_loss/output", "disc_acc/output/1", "alpha/dec3"} <= set(rec)
    clf = ClassifyTask(2).build_model("resnet18", 3, (32, 32), base_width=8)
    assert {"layer1", "layer4", "output", "pooled"} <= set(clf.feature_levels())


def test_unknown_level_and_wrong_discriminator_are_config_errors() -> None:
    model = Tiny()
    with pytest.raises(ConfigError, match=r"method.levels\[1\].name: unknown feature level 'p7' .*c1, c2, roi"):
        resolve_levels(MethodConfig(name="dann", levels=[{"name": "c1"}, {"name": "p7"}]), model)
    with pytest.raises(ConfigError, match="patch needs a feature map"):
        resolve_levels(MethodConfig(name="dann", levels=[{"name": "roi", "discriminator": "patch"}]), model)
    with pytest.raises(ValueError, match="used by method dann only"):
        MethodConfig(name="mixed", levels=[{"name": "c1"}])
    with pytest.raises(ValueError, match="not among method.levels"):
        MethodConfig(name="dann", levels=[{"name": "c1"}], consistency={"image": "c1", "instance": "roi"})
