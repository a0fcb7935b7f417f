"""Training-time image augmentation for every task: horizontal and vertical flips, quarter turns,
Gaussian blur or sharpening, and colour jitter (brightness, contrast, saturation, hue), configured by
:class:`AugmentConfig`.

:func:`augment_batch` works on a batch of float images (N, C, H, W) in 0..1 with the per-sample
targets of any task: a flip or turn also moves segmentation masks (``target["mask"]``), instance masks
(``target["masks"]``, N x H x W) and boxes (``target["boxes"]``, xyxy in input pixels); class and
identity targets are unchanged. Every random number comes from the generator passed in (the trainer
derives it from (seed, step, domain)), and all of them are drawn whether or not an augmentation is
enabled, so turning one on does not change the draws of the others and a resumed run sees the same
augmented batches.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from simreal.config import StrictModel

# Offset of the augmentation's random stream from the batch-drawing stream of the same domain.
AUGMENT_STREAM = 1000


class AugmentConfig(StrictModel):
    """Which augmentations to apply to training batches (all off by default)."""

    hflip: float = Field(0.0, ge=0.0, le=1.0, description=(
        "Probability of a horizontal flip per image; masks and boxes are flipped with it. Leave 0 when "
        "classes are left/right specific (e.g. a glance to one side)."))
    vflip: float = Field(0.0, ge=0.0, le=1.0, description=(
        "Probability of a vertical flip per image (views without an up: overhead, ceiling fisheye, aerial, "
        "microscopy); masks and boxes are flipped with it."))
    rot90: float = Field(0.0, ge=0.0, le=1.0, description=(
        "Probability of a quarter turn per image, by 90, 180 or 270 degrees (equally likely; 180 only for "
        "non-square images); for views without an up, like vflip."))
    blur: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a Gaussian blur per image.")
    blur_sigma: tuple[float, float] = Field((0.3, 1.5), description=(
        "Range [low, high] of the blur's standard deviation in pixels of the training image (uniform draw)."))
    sharpen: float = Field(0.0, ge=0.0, le=1.0, description=(
        "Probability of unsharp-mask sharpening per image; an image is blurred or sharpened, never both "
        "(blur + sharpen must be at most 1)."))
    sharpen_amount: tuple[float, float] = Field((0.5, 1.5), description=(
        "Range of the sharpening amount a in x + a * (x - blur(x, sigma = 1 px)) (uniform draw)."))
    brightness: float = Field(0.0, ge=0.0, lt=1.0, description=(
        "Colour jitter: brightness factor drawn from [1 - b, 1 + b]; 0 = off."))
    contrast: float = Field(0.0, ge=0.0, lt=1.0, description=(
        "Colour jitter: contrast factor drawn from [1 - c, 1 + c] around the image's mean grey; 0 = off."))
    saturation: float = Field(0.0, ge=0.0, lt=1.0, description=(
        "Colour jitter: saturation factor drawn from [1 - s, 1 + s] (3-channel images only); 0 = off."))
    hue: float = Field(0.0, ge=0.0, le=0.5, description=(
        "Colour jitter: hue rotation drawn from [-h, h] turns, applied in YIQ space (3-channel images only); 0 = off."))

    @model_validator(mode="after")
    def _check(self) -> AugmentConfig:
        if self.blur + self.sharpen > 1.0 + 1e-9:
            raise ValueError(f"blur + sharpen must be at most 1 (an image is blurred or sharpened), got "
                             f"{self.blur} + {self.sharpen}")
        for name in ("blur_sigma", "sharpen_amount"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"{name}: expected 0 < low <= high, got [{lo}, {hi}]")
        return self

    @property
    def enabled(self) -> bool:
        """True when any augmentation can change an image."""
        return any((self.hflip, self.vflip, self.rot90, self.blur, self.sharpen, self.brightness, self.contrast,
                    self.saturation, self.hue))


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian kernel of radius ceil(3 sigma)."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of one image (C, H, W) with reflected borders."""
    k = gaussian_kernel(sigma)
    c, h, w = img.shape
    r = (len(k) - 1) // 2
    x = img.unsqueeze(0)
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]


_GREY = torch.tensor([0.299, 0.587, 0.114])
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def _grey(img: torch.Tensor) -> torch.Tensor:
    return img if img.shape[0] == 1 else torch.einsum("c,chw->hw", _GREY, img).unsqueeze(0)


def hue_rotate(img: torch.Tensor, turns: float) -> torch.Tensor:
    """Rotate the chroma plane (I, Q) of a 3-channel image by ``turns`` of a full circle."""
    a = 2.0 * math.pi * turns
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])
    m = _YIQ2RGB @ rot @ _RGB2YIQ
    return torch.einsum("dc,chw->dhw", m, img)


def flip_target(t: Any, size: int, axis: int = -1) -> Any:
    """The target of an image flipped along ``axis`` (-1: horizontally, ``size`` = its width; -2: vertically,
    ``size`` = its height): masks, per-instance ``masks`` (N, H, W numpy) and xyxy boxes flipped."""
    if not isinstance(t, dict) or not ({"mask", "masks", "boxes"} & t.keys()):
        return t
    t = dict(t)
    if "mask" in t:
        t["mask"] = t["mask"].flip(axis)
    if "masks" in t:
        t["masks"] = np.ascontiguousarray(np.flip(np.asarray(t["masks"]), axis))
    if "boxes" in t and len(t["boxes"]):
        b = np.asarray(t["boxes"]).copy()
        lo, hi = (0, 2) if axis == -1 else (1, 3)
        b[:, [lo, hi]] = size - b[:, [hi, lo]]
        t["boxes"] = b
    return t


def rot90_target(t: Any, k: int, height: int, width: int) -> Any:
    """The target of an image of ``height`` x ``width`` turned ``k`` quarter turns counter-clockwise as
    ``torch.rot90(img, k, (-2, -1))`` turns it: a point (x, y) goes to (y, width - x) per turn."""
    if not isinstance(t, dict) or not ({"mask", "masks", "boxes"} & t.keys()):
        return t
    t = dict(t)
    k %= 4
    if "mask" in t:
        t["mask"] = torch.rot90(t["mask"], k, (-2, -1))
    if "masks" in t:
        t["masks"] = np.ascontiguousarray(np.rot90(np.asarray(t["masks"]), k, (-2, -1)))
    if "boxes" in t and len(t["boxes"]):
        b = np.asarray(t["boxes"], dtype=np.float64).copy()
        h, w = height, width
        for _ in range(k):
            b = np.stack([b[:, 1], w - b[:, 2], b[:, 3], w - b[:, 0]], 1)
            h, w = w, h
        t["boxes"] = b.astype(np.asarray(t["boxes"]).dtype)
    return t


def draw_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Uniform draws for ``n`` images, always the same number whatever is enabled (keys added later come
    last, so the draws of the older ones do not change)."""
    return {k: rng.random(n) for k in ("flip", "filter", "filter_strength", "brightness", "contrast",
                                       "saturation", "hue", "vflip", "rot", "rot_k")}


def augment_batch(x: torch.Tensor, targets: list[Any], cfg: AugmentConfig, rng: np.random.Generator,
                  start: int = 0, total: int | None = None) -> tuple[torch.Tensor, list[Any]]:
    """Augment a batch (N, C, H, W, values 0..1) and its targets; returns new objects.

    ``x`` may be rows ``start .. start + N`` of a batch of ``total`` (one rank's shard in a data-parallel
    job): the draws are made for the whole batch and this slice is used, so the shards of all ranks are
    augmented exactly as the whole batch would be in one process."""
    n = int(x.shape[0])
    u = {k: v[start:start + n] for k, v in draw_params(rng, n if total is None else total).items()}
    if not cfg.enabled or n == 0:
        return x, targets
    out, tg = [], list(targets)
    height, width = int(x.shape[-2]), int(x.shape[-1])
    for i in range(n):
        img = x[i]
        if u["flip"][i] < cfg.hflip:
            img = img.flip(-1)
            tg[i] = flip_target(tg[i], width)
        if u["vflip"][i] < cfg.vflip:
            img = img.flip(-2)
            tg[i] = flip_target(tg[i], height, axis=-2)
        if u["rot"][i] < cfg.rot90:
            k = 1 + min(2, int(3 * u["rot_k"][i])) if height == width else 2
            img = torch.rot90(img, k, (-2, -1))
            tg[i] = rot90_target(tg[i], k, height, width)
        img = _colour_jitter(img, cfg, {k: float(v[i]) for k, v in u.items()})
        f, s = float(u["filter"][i]), float(u["filter_strength"][i])
        if f < cfg.blur:
            lo, hi = cfg.blur_sigma
            img = gaussian_blur(img, lo + (hi - lo) * s)
        elif f < cfg.blur + cfg.sharpen:
            lo, hi = cfg.sharpen_amount
            a = lo + (hi - lo) * s
            img = (img + a * (img - gaussian_blur(img, 1.0))).clamp(0.0, 1.0)
        out.append(img)
    return torch.stack(out), tg


def _colour_jitter(img: torch.Tensor, cfg: AugmentConfig, u: dict[str, float]) -> torch.Tensor:
    def factor(strength: float, draw: float) -> float:
        return 1.0 + strength * (2.0 * draw - 1.0)

    if cfg.brightness:
        img = (img * factor(cfg.brightness, u["brightness"])).clamp(0.0, 1.0)
    if cfg.contrast:
        m = _grey(img).mean()
        img = ((img - m) * factor(cfg.contrast, u["contrast"]) + m).clamp(0.0, 1.0)
    if img.shape[0] == 3:
        if cfg.saturation:
            g = _grey(img)
            img = (g + (img - g) * factor(cfg.saturation, u["saturation"])).clamp(0.0, 1.0)
        if cfg.hue:
            img = hue_rotate(img, cfg.hue * (2.0 * u["hue"] - 1.0)).clamp(0.0, 1.0)
    return img


class Augmenter:
    """Callable attached to a training source: ``(x, targets, rng) -> (x, targets)``."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, x: torch.Tensor, targets: list[Any], rng: np.random.Generator, start: int = 0,
                 total: int | None = None) -> tuple[torch.Tensor, list[Any]]:
        return augment_batch(x, targets, self.cfg, rng, start, total)
