"""Training augmentations: exact flips of images and targets, blur against scipy, sharpening,
colour jitter recomputed from the same draws, determinism per (seed, step) through balanced_batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from simreal.adapt.config import TrainConfig
from simreal.config import validate
from simreal.datasets.augment import (
    AUGMENT_STREAM,
    AugmentConfig,
    Augmenter,
    augment_batch,
    draw_params,
    gaussian_blur,
    hue_rotate,
)
from simreal.datasets.torchdata import ArraySource, balanced_batch
from simreal.errors import ConfigError
from simreal.runtime.seeding import sample_rng


def _batch(n: int = 4, c: int = 3, h: int = 12, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32))


def test_flip_flips_images_masks_and_boxes_but_not_labels() -> None:
    x = _batch(3)
    mask = torch.arange(12 * 16).reshape(12, 16)
    targets = [2, {"mask": mask, "present": np.array([True])},
               {"boxes": np.array([[1.0, 2.0, 5.0, 6.0]], dtype=np.float32), "labels": np.array([0])}]
    y, t = augment_batch(x, targets, AugmentConfig(hflip=1.0), np.random.default_rng(0))
    assert torch.equal(y, x.flip(-1))
    assert t[0] == 2
    assert torch.equal(t[1]["mask"], mask.flip(-1)) and t[1]["present"] is targets[1]["present"]
    np.testing.assert_array_equal(t[2]["boxes"], [[11.0, 2.0, 15.0, 6.0]])  # x' = W - x, ends swapped
    np.testing.assert_array_equal(targets[2]["boxes"], [[1.0, 2.0, 5.0, 6.0]])  # input untouched
    y2, t2 = augment_batch(y, t, AugmentConfig(hflip=1.0), np.random.default_rng(0))
    assert torch.equal(y2, x) and torch.equal(t2[1]["mask"], mask)


def test_blur_matches_scipy_gaussian_filter() -> None:
    img = _batch(1, 3, 20, 24)[0]
    sigma = 1.3
    r = int(np.ceil(3 * sigma))
    ref = np.stack([ndimage.gaussian_filter(img[c].numpy().astype(np.float64), sigma, mode="mirror", radius=r)
                    for c in range(3)])
    np.testing.assert_allclose(gaussian_blur(img, sigma).numpy(), ref, atol=1e-5)


def test_blur_and_sharpen_draws_follow_the_config() -> None:
    x = _batch(64, 1, 16, 16)
    const = torch.full((64, 1, 16, 16), 0.4)
    cfg = AugmentConfig(blur=0.5, sharpen=0.5, blur_sigma=(1.0, 1.0), sharpen_amount=(1.0, 1.0))
    y, _ = augment_batch(x, [None] * 64, cfg, np.random.default_rng(3))
    u = draw_params(np.random.default_rng(3), 64)
    for i in range(64):
        lap_in = ndimage.laplace(x[i, 0].numpy()).var()
        lap_out = ndimage.laplace(y[i, 0].numpy()).var()
        if u["filter"][i] < 0.5:
            assert lap_out < 0.5 * lap_in  # blurred: less high-frequency energy
        else:
            assert lap_out > 1.2 * lap_in  # sharpened: more
    yc, _ = augment_batch(const, [None] * 64, cfg, np.random.default_rng(3))
    assert torch.allclose(yc, const, atol=1e-6)  # a flat image stays flat


def test_colour_jitter_recomputed_from_the_same_draws() -> None:
    x = _batch(5) * 0.5 + 0.25  # away from the clamp
    y, _ = augment_batch(x, [None] * 5, AugmentConfig(brightness=0.2), np.random.default_rng(7))
    u = draw_params(np.random.default_rng(7), 5)
    f = torch.tensor(1 + 0.2 * (2 * u["brightness"] - 1), dtype=torch.float32).view(-1, 1, 1, 1)
    assert torch.allclose(y, (x * f).clamp(0, 1), atol=1e-6)
    y, _ = augment_batch(x, [None] * 5, AugmentConfig(contrast=0.3), np.random.default_rng(7))
    grey = torch.einsum("c,nchw->nhw", torch.tensor([0.299, 0.587, 0.114]), x).mean((1, 2)).view(-1, 1, 1, 1)
    f = torch.tensor(1 + 0.3 * (2 * u["contrast"] - 1), dtype=torch.float32).view(-1, 1, 1, 1)
    assert torch.allclose(y, ((x - grey) * f + grey).clamp(0, 1), atol=1e-5)


def test_hue_rotation_keeps_luma_and_inverts() -> None:
    img = _batch(1)[0] * 0.4 + 0.3
    rot = hue_rotate(img, 0.1)
    luma = torch.tensor([0.299, 0.587, 0.114])
    assert torch.allclose(torch.einsum("c,chw->hw", luma, rot), torch.einsum("c,chw->hw", luma, img), atol=1e-5)
    assert torch.allclose(hue_rotate(rot, -0.1), img, atol=1e-5)
    assert not torch.allclose(rot, img, atol=1e-3)
    grey = torch.full((3, 4, 4), 0.5)
    assert torch.allclose(hue_rotate(grey, 0.3), grey, atol=1e-5)  # no chroma, nothing to rotate


def test_balanced_batch_augmentation_is_deterministic_per_seed_and_step() -> None:
    src = ArraySource("a", 0, _batch(10), list(range(10)))
    src.augment = Augmenter(AugmentConfig(hflip=0.5, blur=0.3, sharpen=0.3, brightness=0.2, hue=0.05))
    b1 = balanced_batch([src], step=5, seed=1, per_domain=8)
    b2 = balanced_batch([src], step=5, seed=1, per_domain=8)
    b3 = balanced_batch([src], step=6, seed=1, per_domain=8)
    assert torch.equal(b1.x, b2.x) and b1.targets == b2.targets
    assert not torch.equal(b1.x, b3.x)
    # the same batch without augmentation, then augmented by hand with the documented stream
    plain = ArraySource("a", 0, src.images, src.targets)
    raw = balanced_batch([plain], step=5, seed=1, per_domain=8)
    again, _ = augment_batch(raw.x, raw.targets, src.augment.cfg, sample_rng(1, 5, stream=AUGMENT_STREAM + 0))
    assert torch.equal(again, b1.x) and raw.targets == b1.targets


def test_train_config_errors_name_the_key() -> None:
    base = {"data": {"domains": [{"path": "x"}]}}
    with pytest.raises(ConfigError, match="cfg.yaml: augment: blur \\+ sharpen must be at most 1"):
        validate(TrainConfig, {**base, "augment": {"blur": 0.7, "sharpen": 0.6}}, "cfg.yaml")
    with pytest.raises(ConfigError, match="augment: blur_sigma: expected 0 < low <= high"):
        validate(TrainConfig, {**base, "augment": {"blur_sigma": [2.0, 1.0]}}, "cfg.yaml")
    with pytest.raises(ConfigError, match="augment.hflip: Input should be less than or equal to 1"):
        validate(TrainConfig, {**base, "augment": {"hflip": 1.5}}, "cfg.yaml")
    assert not validate(TrainConfig, base, "cfg.yaml").augment.enabled and AugmentConfig(hue=0.1).enabled


def test_flip_keeps_instance_masks_inside_their_flipped_boxes() -> None:
    """Mask R-CNN targets carry per-instance ``masks`` (N, H, W) beside ``boxes``: both must flip together."""
    masks = np.zeros((2, 12, 16), np.uint8)
    masks[0, 2:6, 1:5] = 1
    masks[1, 7:11, 9:16] = 1
    boxes = np.array([[1.0, 2.0, 5.0, 6.0], [9.0, 7.0, 16.0, 11.0]], np.float32)
    t = {"boxes": boxes, "labels": np.array([1, 2]), "masks": masks}
    _, (out,) = augment_batch(_batch(1), [t], AugmentConfig(hflip=1.0), np.random.default_rng(0))
    for m, b in zip(out["masks"], out["boxes"], strict=True):
        ys, xs = np.nonzero(m)
        np.testing.assert_array_equal([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], b)
    np.testing.assert_array_equal(out["masks"], masks[..., ::-1])
    np.testing.assert_array_equal(t["masks"], masks)  # input untouched


def _box_of(m: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(m)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("cfg", [AugmentConfig(vflip=1.0), AugmentConfig(rot90=1.0)])
@pytest.mark.parametrize("hw", [(16, 16), (12, 16)])
def test_vflip_and_quarter_turns_move_masks_and_boxes_with_the_image(cfg: AugmentConfig, hw: tuple[int, int]) -> None:
    """Each instance's box after the transform is the box of its transformed mask, and the image, the semantic
    mask and the instance masks turn by the same ``torch.rot90`` / flip (non-square images: 180 degrees only)."""
    h, w = hw
    masks = np.zeros((2, h, w), np.uint8)
    masks[0, 2:6, 1:5] = 1
    masks[1, 7:11, 9:16] = 1
    boxes = np.array([_box_of(m) for m in masks], np.float32)
    sem = torch.from_numpy(masks[0] + 2 * masks[1]).long()
    x = torch.from_numpy(np.repeat((masks[0] + 2 * masks[1])[None, None].astype(np.float32), 3, 1).repeat(8, 0))
    targets = [{"boxes": boxes, "labels": np.array([1, 2]), "masks": masks, "mask": sem} for _ in range(8)]
    y, out = augment_batch(x, targets, cfg, np.random.default_rng(3))
    turns = set()
    for i, t in enumerate(out):
        for m, b in zip(t["masks"], t["boxes"], strict=True):
            np.testing.assert_array_equal(_box_of(m), b)
        assert torch.equal(y[i, 0], t["mask"].float())  # image and semantic mask moved together
        np.testing.assert_array_equal(t["masks"][0] + 2 * t["masks"][1], t["mask"].numpy())
        if cfg.rot90:
            k = next(k for k in range(1, 4) if torch.equal(torch.rot90(x[i], k, (-2, -1)), y[i]))
            turns.add(k)
        else:
            assert torch.equal(y[i], x[i].flip(-2))
    np.testing.assert_array_equal(targets[0]["masks"], masks)  # inputs untouched
    if cfg.rot90:
        assert turns == ({1, 2, 3} if h == w else {2})  # 8 images: every quarter turn drawn for square images


def test_new_augmentation_keys_leave_the_older_draws_unchanged() -> None:
    """Draws are appended per key: adding vflip/rot90 must not change what an existing config's images get."""
    d = draw_params(np.random.default_rng(7), 5)
    old = np.random.default_rng(7)
    for k in ("flip", "filter", "filter_strength", "brightness", "contrast", "saturation", "hue"):
        np.testing.assert_array_equal(d[k], old.random(5))
