"""Feature extraction for distribution metrics: image sets (dataset folders or image folders) mapped
through a feature extractor to an (N, D) float64 array.

An extractor is any callable (e.g. an ``nn.Module``) taking a float tensor (B, 3, H, W) in [0, 1] and
returning (B, D) vectors or (B, C, h, w) maps (global-average-pooled here)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simreal.datasets import Dataset
from simreal.errors import ConfigError, WeightsError

Extractor = Callable[[Tensor], Tensor]
EXTRACTORS = ("inception", "vgg16", "pixels")
INCEPTION_ENV = "SIMREAL_INCEPTION_WEIGHTS"
VGG_ENV = "SIMREAL_VGG16_WEIGHTS"


class PixelExtractor(nn.Module):
    """Area-downsampled pixels (size × size × 3, flattened): a cheap sanity extractor, not comparable
    with Inception-based FID."""

    def __init__(self, size: int = 8) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.size).flatten(1)


class VGGPooled(nn.Module):
    """One VGG16 layer, global-average-pooled (input in [0, 1])."""

    def __init__(self, vgg: nn.Module) -> None:
        super().__init__()
        self.vgg = vgg

    def forward(self, x: Tensor) -> Tensor:
        return self.vgg(x * 2 - 1)[0].mean(dim=(2, 3))


def _weights_path(weights: str | Path | None, env: str, what: str, hint: str) -> Path:
    if weights is None:
        weights = os.environ.get(env)
    if not weights:
        raise WeightsError(
            f"{what} weights not given: pass --weights PATH ({hint}) or set {env}; "
            "nothing is downloaded at run time"
        )
    return Path(weights)


def make_extractor(
    name: str = "inception",
    weights: str | Path | None = None,
    dims: int = 2048,
    layer: str = "pool5",
    pixels: int = 8,
) -> nn.Module:
    """Build a named extractor: ``inception`` (pytorch-fid FID Inception, ``dims`` 64/192/768/2048),
    ``vgg16`` (torchvision-format VGG16 file, one layer pooled) or ``pixels``."""
    if name == "inception":
        from simreal.nn.inception import FID_WEIGHTS_NAME, load_fid_inception

        return load_fid_inception(_weights_path(weights, INCEPTION_ENV, "Inception", FID_WEIGHTS_NAME), dims)
    if name == "vgg16":
        from simreal.nn.vgg import load_vgg16

        path = _weights_path(weights, VGG_ENV, "VGG16", "a torchvision vgg16 state dict")
        return VGGPooled(load_vgg16(path, [layer])).eval()
    if name == "pixels":
        return PixelExtractor(pixels)
    raise ConfigError(f"--extractor: expected one of {', '.join(EXTRACTORS)}, got {name!r}")


def iter_image_arrays(source: str | Path | Dataset, max_images: int | None = None) -> Iterator[np.ndarray]:
    """uint8 HxWx3 images of a dataset folder or image folder, in dataset order."""
    ds = source if isinstance(source, Dataset) else Dataset.open(source)
    n = len(ds) if max_images is None else min(len(ds), max_images)
    for i in range(n):
        yield ds.load_image(i, "RGB")


def _batches(images: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for img in images:
        if batch and (len(batch) == batch_size or img.shape != batch[0].shape):
            yield np.stack(batch)
            batch = []
        batch.append(img)
    if batch:
        yield np.stack(batch)


@torch.no_grad()
def extract_features(
    source: str | Path | Dataset | list[np.ndarray],
    extractor: Extractor,
    batch_size: int = 50,
    max_images: int | None = None,
    description: str | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Run ``extractor`` over an image set in batches (images of equal size are batched together), on
    ``device`` (an ``nn.Module`` extractor is moved there; default: where the extractor is, else the CPU)."""
    from simreal.runtime.progress import make_progress

    if isinstance(source, list):
        images: Iterator[np.ndarray] = iter(source[:max_images] if max_images else source)
        total = len(source) if max_images is None else min(len(source), max_images)
    else:
        ds = source if isinstance(source, Dataset) else Dataset.open(source)
        total = len(ds) if max_images is None else min(len(ds), max_images)
        images = iter_image_arrays(ds, max_images)
    if isinstance(extractor, nn.Module):
        extractor.eval()
        if device is not None:
            extractor.to(device)
        dev = torch.device(device) if device is not None else next(
            iter([*extractor.parameters(), *extractor.buffers()]), torch.zeros(())).device
    else:
        dev = torch.device(device or "cpu")
    out: list[np.ndarray] = []
    with make_progress("img", disable=not progress) as prog:
        task = prog.add_task(description or "features", total=total)
        for batch in _batches(images, batch_size):
            x = torch.from_numpy(batch).to(dev, non_blocking=True).permute(0, 3, 1, 2).float() / 255.0
            f = extractor(x)
            if f.ndim == 4:
                f = f.mean(dim=(2, 3))
            out.append(f.reshape(len(batch), -1).double().cpu().numpy())
            prog.advance(task, len(batch))
    if not out:
        raise WeightsError("no images to extract features from")
    return np.concatenate(out, 0)
