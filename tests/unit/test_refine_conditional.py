"""Class-conditional discriminators for refiners: the classes they see (label, else the frozen task model's
prediction), the one-hot class maps and the parameters they add, pools that keep each fake with its class, config
checks, and a toy translation whose target appearance depends on the class: the conditional refiner follows the
labels (swap them and the result swaps), the unconditional one cannot use them at all."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simreal.errors import ConfigError
from simreal.refine.arrays import ArrayRefinerSettings, array_consistency, refine_arrays, train_array_refiner
from simreal.refine.config import RefinerConfig
from simreal.refine.consistency import SemanticConsistency
from simreal.refine.models import build_model

from .test_refine_consistency import MeanClassifier


def _ident(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) * 0.5


def test_classes_are_the_label_where_given_else_the_task_models_prediction() -> None:
    sc = SemanticConsistency(MeanClassifier(), "classify", _ident, weight=0.0, num_classes=2)
    # refiner space [-1, 1]: images at -0.6 and 0.2 read as class 0 (dark) and 1 (bright) by the mean classifier
    x = torch.tensor([-0.6, 0.2, -0.6, 0.2]).view(4, 1, 1, 1).expand(4, 1, 4, 4)
    assert sc.classes(x).tolist() == [0, 1, 0, 1]
    assert sc.classes(x, torch.tensor([1, -1, -1, 0])).tolist() == [1, 1, 0, 0]
    unlabelled = SemanticConsistency(MeanClassifier(), "classify", _ident, use_labels=False)
    assert unlabelled.classes(x, torch.tensor([1, 1, 1, 1])).tolist() == [0, 1, 0, 1]  # use_labels off: predictions
    seg = SemanticConsistency(MeanClassifier(), "segment", _ident)
    with pytest.raises(ConfigError, match="classify"):
        seg.classes(x)


def _tiny(model: str = "cyclegan") -> RefinerConfig:
    return RefinerConfig.model_validate({"model": model, "net": {"ngf": 4, "ndf": 4, "n_blocks": 1, "n_layers_d": 1},
                                         "cut": {"nce_layers": [0, 4, 7], "num_patches": 8},
                                         "train": {"pool_size": 4}})


@pytest.mark.parametrize("model", ["cyclegan", "cut"])
def test_conditional_discriminators_take_one_hot_class_maps(model: str) -> None:
    torch.manual_seed(0)
    plain, cond = build_model(_tiny(model), 1), build_model(_tiny(model), 1, cond_classes=3)
    names = ["D_A", "D_B"] if model == "cyclegan" else ["D"]
    ndf = 4
    for n in names:
        first = getattr(cond, n).model[0]
        assert first.in_channels == 1 + 3
        extra = sum(p.numel() for p in getattr(cond, n).parameters()) - sum(
            p.numel() for p in getattr(plain, n).parameters())
        assert extra == 3 * ndf * 4 * 4  # only the first conv grows: 3 more input channels of 4x4 kernels
    x = torch.rand(5, 1, 6, 6) * 2 - 1
    y = torch.tensor([0, 2, 1, 2, 0])
    d_in = cond._d_in(x, y)
    assert d_in.shape == (5, 4, 6, 6)
    assert torch.equal(d_in[:, :1], x)
    for k in range(3):
        assert torch.equal(d_in[:, 1 + k], (y == k).float().view(5, 1, 1).expand(5, 6, 6))
    assert plain._d_in(x, None) is x


def test_cyclegan_pools_keep_each_fake_with_its_class_and_the_losses_use_them() -> None:
    torch.manual_seed(0)
    model = build_model(_tiny(), 1, cond_classes=2)
    model.consistency = SemanticConsistency(MeanClassifier(), "classify", _ident, weight=0.0, num_classes=2)
    a = torch.rand(4, 1, 8, 8) * 2 - 1
    b = torch.rand(4, 1, 8, 8) * 2 - 1
    labels = torch.tensor([1, 0, -1, 1])
    losses = model.train_step(a, b, None, None, 0, labels)
    assert "sem_A" not in losses  # weight 0: the task model only gives the classes
    pooled = torch.cat(model.pool_B.images, 0)
    assert pooled.shape == (4, 3, 8, 8)  # image + 2 class maps
    want = model.consistency.classes(a, labels)
    assert torch.equal(pooled[:, 1:].argmax(1)[:, 0, 0], want)
    assert torch.equal(pooled[:, 1:].sum(1), torch.ones(4, 8, 8))  # one-hot everywhere
    pooled_a = torch.cat(model.pool_A.images, 0)  # real -> synthetic fakes carry the task model's pseudo-labels
    assert torch.equal(pooled_a[:, 1:].argmax(1)[:, 0, 0], model.consistency.classes(b))


def test_conditional_needs_a_task_model() -> None:
    model = build_model(_tiny(), 1, cond_classes=2)
    with pytest.raises(RuntimeError, match="task model"):
        model.train_step(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8), None, None, 0)
    x = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="num_classes"):
        train_array_refiner(x, x, 0, 1, settings=ArrayRefinerSettings(conditional=True))
    with pytest.raises(ValueError, match="num_classes"):
        train_array_refiner(x, x, 0, 1, settings=ArrayRefinerSettings(conditional=True),
                            consistency=array_consistency(MeanClassifier()))


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="consistency.run"):
        RefinerConfig.model_validate({"consistency": {"conditional_discriminator": True}})
    with pytest.raises(ValueError, match="discriminator"):
        RefinerConfig.model_validate({"consistency": {"conditional_discriminator": True, "run": "r"},
                                      "loss": {"perceptual": {"extractor": "discriminator",
                                                              "lambda_mean_feat": 1.0}}})
    on = RefinerConfig.model_validate({"consistency": {"conditional_discriminator": True, "run": "r"}})
    assert on.architecture()["conditional_discriminator"] is True  # a resumed run must match it
    assert RefinerConfig().architecture()["conditional_discriminator"] is False
    from types import SimpleNamespace

    from simreal.refine.fit import _cond_classes

    assert _cond_classes(on, SimpleNamespace(kind="classify", num_classes=7)) == 7
    assert _cond_classes(RefinerConfig(), None) == 0
    with pytest.raises(ConfigError, match="classify run"):
        _cond_classes(on, SimpleNamespace(kind="segment", num_classes=None))


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic: mid-grey stripes, vertical for class 0 and horizontal for class 1 (mean 8 of 16 either way).
    Real: flat images, dark (3) or bright (13), which the mean classifier reads as class 0 and 1."""
    rng = np.random.default_rng(seed)
    y = np.arange(2 * n) % 2
    stripes = (np.arange(8) % 2) * 8 + 4.0
    a = np.where(y[:, None, None] == 0, stripes[None, None, :], stripes[None, :, None])
    a = np.clip(a + rng.integers(-1, 2, a.shape), 0, 16)
    b = np.where(y[:, None, None] == 0, 3.0, 13.0) + rng.integers(-2, 3, (2 * n, 8, 8))
    return a.astype(np.float32), y, np.clip(b, 0, 16).astype(np.float32)


@pytest.mark.slow
def test_conditional_refiner_follows_the_class_the_unconditional_cannot() -> None:
    """The real look depends on the class (class 0 dark, class 1 bright), the synthetic images do not show it
    (both mid-grey). With conditional discriminators the refined class-0 images come out darker than the class-1
    ones, and swapping the labels swaps that; without conditioning the labels cannot matter (identical output)
    and the refiner collapses both classes to one look. No consistency loss (weight 0): the task model only
    names the classes of the real images."""
    gaps: dict[tuple[bool, str], list[float]] = {}
    outs: dict[tuple[bool, str], np.ndarray] = {}
    for cond, seeds in ((True, (1, 2)), (False, (1,))):  # GAN runs differ between CPUs: two seeds, mean gap
        st = ArrayRefinerSettings(lambda_identity=0.0, lambda_cycle=1.0, n_blocks=1, ngf=4, ndf=4, lr=2e-3,
                                  conditional=cond)
        for seed in seeds:
            a, y, b = _toy(64, seed)
            for name, labels in (("labels", y), ("swapped", 1 - y)):
                out = refine_arrays(a, b, seed, 300, 17, st, synthetic_y=labels,
                                    consistency=array_consistency(MeanClassifier(), 0.0, num_classes=2))
                outs[cond, name] = out
                gaps.setdefault((cond, name), []).append(float(out[y == 1].mean() - out[y == 0].mean()))
    mean = {k: float(np.mean(v)) for k, v in gaps.items()}  # > 0: class 0 darker than class 1
    assert mean[True, "labels"] >= 1.5 and mean[True, "swapped"] <= -1.5, gaps
    assert np.array_equal(outs[False, "labels"], outs[False, "swapped"])
    assert abs(mean[False, "labels"]) < 1.0, gaps


def test_cut_discriminator_sees_fakes_with_source_classes_and_reals_with_pseudo_labels() -> None:
    """CUT's one conditional discriminator: every input it gets in a step carries one-hot class maps — the source
    labels (or the task model's reading where a label is -1) with the fakes, the pseudo-labels with the reals."""
    torch.manual_seed(0)
    model = build_model(_tiny("cut"), 1, cond_classes=2)
    model.consistency = SemanticConsistency(MeanClassifier(), "classify", _ident, weight=0.0, num_classes=2)
    seen: list[torch.Tensor] = []
    model.D.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    a = torch.linspace(-1, 1, 4 * 64).view(4, 1, 8, 8)
    b = torch.stack([torch.full((1, 8, 8), v) for v in (-0.8, 0.6, 0.4, -0.2)])
    labels = torch.tensor([1, -1, 0, 1])
    out = model.train_step(a, b, None, None, 0, labels)
    assert set(out) >= {"D", "G_GAN", "NCE"} and all(torch.isfinite(v) for v in out.values())
    assert len(seen) == 3 and all(x.shape == (4, 3, 8, 8) for x in seen)  # D: fake, real; then G: fake
    cls = [x[:, 1:].argmax(1)[:, 0, 0].tolist() for x in seen]
    a_mean_reading = int((a[1].mean() + 1) / 2 > 0.5)  # no label: what the mean classifier reads on the original
    assert cls[0] == cls[2] == [1, a_mean_reading, 0, 1]
    assert cls[1] == [0, 1, 1, 0]  # the real images: bright ones read as class 1
    assert all(torch.equal(x[:, 1:].sum(1), torch.ones(4, 8, 8)) for x in seen)
