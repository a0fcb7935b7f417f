"""Training samples for refiners: random crops of whole images, or fixed-size crops around annotated
objects (crop-refine-reinsert training), with optional foreground masks. Samples are drawn with a
numpy Generator the trainer derives from (seed, iteration), so a resumed run sees the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from simreal.datasets import Dataset, extras
from simreal.errors import DatasetError
from simreal.refine.config import CropConfig, DataConfig
from simreal.refine.crops import ann_center, extract_crops, snap_centers, upright_angles

_ONE_CHANNEL_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def native_channels(path: Path) -> int:
    """1 for grey-level image files, 3 otherwise."""
    try:
        with Image.open(path) as img:
            return 1 if img.mode in _ONE_CHANNEL_MODES else 3
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: unreadable image ({exc.__class__.__name__})") from None


def dataset_channels(ds: Dataset, probe: int = 8) -> int:
    """Channel count of a dataset's images (checked on the first ``probe`` files; must agree)."""
    found = {native_channels(ds.image_path(i)) for i in range(min(len(ds), probe))}
    if len(found) > 1:
        raise DatasetError(f"{ds.root}: mixes grey-level and colour images; set data.channels to 1 or 3")
    return found.pop()


def resolve_channels(source: Dataset, target: Dataset, configured: int | None) -> int:
    """The refiner's channel count: configured, or detected (source and target must then agree)."""
    if configured is not None:
        return configured
    cs, ct = dataset_channels(source), dataset_channels(target)
    if cs != ct:
        raise DatasetError(
            f"channel mismatch: source {source.root} has {cs}-channel images, target {target.root} has {ct}; "
            "set data.channels: 3 (or 1) in the config to convert both"
        )
    return cs


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxW or HxWxC to float (C, H, W) in [-1, 1]."""
    if img.ndim == 2:
        img = img[:, :, None]
    return torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float() / 127.5 - 1.0


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float (C, H, W) in [-1, 1] to uint8 HxWxC (HxW for one channel)."""
    arr = ((t.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


class ImageSet:
    """One domain's training samples from a dataset (or image folder)."""

    def __init__(
        self,
        ds: Dataset,
        channels: int,
        data: DataConfig,
        crops: CropConfig,
        role: str,
        with_masks: bool = False,
    ) -> None:
        self.ds = ds
        self.role = role
        self.channels = channels
        self.data = data
        self.crops = crops
        self.mode = "L" if channels == 1 else "RGB"
        n = len(ds) if data.max_images is None else min(len(ds), data.max_images)
        if n == 0:
            raise DatasetError(f"{ds.root}: {role} dataset has no images")
        self.image_indices = list(range(n))
        self.with_masks = with_masks and any(ds.record(i).get("mask_file") for i in self.image_indices)
        self.items: list[tuple[int, dict[str, Any] | None]] = []
        if crops.enabled:
            for i in self.image_indices:
                for ann in ds.anns(i):
                    if ann_center(ann) is not None:
                        self.items.append((i, ann))
            if not self.items:
                raise DatasetError(
                    f"{ds.root}: crops.enabled needs annotated {role} images (boxes or points), found none"
                )
        else:
            self.items = [(i, None) for i in self.image_indices]
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self._cache_bytes = 0

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if i in self._cache:
            return self._cache[i]
        img = self.ds.load_image(i, self.mode)
        mask = self.ds.load_mask(i) if self.with_masks else None
        size = min(img.shape[:2])
        need = self.crops.size if self.crops.enabled else self.data.crop_size
        if not self.crops.enabled and self.data.load_size is not None and size != self.data.load_size:
            scale = self.data.load_size / size
            new = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
            img = np.asarray(Image.fromarray(img).resize(new, Image.BICUBIC))
            if mask is not None:
                mask = np.asarray(Image.fromarray(mask.astype(np.int32)).resize(new, Image.NEAREST)).astype(
                    np.uint16
                )
        if min(img.shape[:2]) < need:
            raise DatasetError(
                f"{self.ds.image_path(i)}: image is {img.shape[1]}x{img.shape[0]}, smaller than the "
                f"crop size {need} ({'crops.size' if self.crops.enabled else 'data.crop_size'})"
            )
        if mask is not None and mask.shape != img.shape[:2]:
            raise DatasetError(
                f"{self.ds.image_path(i)}: mask shape {mask.shape} differs from image {img.shape[:2]}"
            )
        nbytes = img.nbytes + (0 if mask is None else mask.nbytes)
        if self._cache_bytes + nbytes <= self.data.cache_mb * 2**20:
            self._cache[i] = (img, mask)
            self._cache_bytes += nbytes
        return img, mask

    def check_all(self) -> None:
        """Load every image once (reports the first unreadable or too-small image before training)."""
        for i in self.image_indices:
            self._load(i)

    def sample(self, item: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One (C, S, S) sample in [-1, 1] and its (1, S, S) foreground mask (or None)."""
        i, ann = self.items[item]
        img, mask = self._load(i)
        flip = self.data.flip and rng.random() < 0.5
        if ann is None:
            s = self.data.crop_size
            y0 = int(rng.integers(0, img.shape[0] - s + 1))
            x0 = int(rng.integers(0, img.shape[1] - s + 1))
            x = to_tensor(img[y0 : y0 + s, x0 : x0 + s])
            m = (
                None
                if mask is None
                else torch.from_numpy((mask[y0 : y0 + s, x0 : x0 + s] > 0).astype(np.float32))[None]
            )
        else:
            x, m = self._object_crop(img, mask, ann)
        if flip:
            x = x.flip(-1)
            m = None if m is None else m.flip(-1)
        return x, m

    def _object_crop(
        self, img: np.ndarray, mask: np.ndarray | None, ann: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        s = self.crops.size
        t = to_tensor(img)
        cx, cy = ann_center(ann)  # type: ignore[misc]
        ctr = snap_centers(torch.tensor([[cx, cy]], dtype=torch.float32), s)
        h, w = img.shape[:2]
        if self.crops.rotate_upright:
            z = self.crops.center if self.crops.center is not None else ((w - 1) / 2, (h - 1) / 2)
            ang = upright_angles(ctr, z)
        else:
            ang = torch.zeros(1)
        x = extract_crops(t, ctr, ang, s)[0]
        m = None
        if mask is not None:
            inst = extras(ann).get("instance_id")
            fg = (mask == inst) if inst is not None else (mask > 0)
            mt = torch.from_numpy(fg.astype(np.float32))[None]
            m = extract_crops(mt, ctr, ang, s, mode="nearest", padding_mode="zeros")[0]
        return x, m

    def batch(self, items: list[int], rngs: list[np.random.Generator]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Samples ``items`` (crop and flip of sample j drawn from ``rngs[j]``) and their masks (or None)."""
        xs, ms = zip(*(self.sample(k, rng) for k, rng in zip(items, rngs, strict=True)), strict=True)
        masks = None
        if self.with_masks:
            masks = torch.stack([m if m is not None else torch.zeros_like(xs[0][:1]) for m in ms])
        return torch.stack(xs), masks

    def fixed_samples(self, n: int) -> torch.Tensor:
        """The first ``n`` samples, centre-cropped, for sample grids."""
        out = []
        for k in range(min(n, len(self.items))):
            i, ann = self.items[k]
            img, mask = self._load(i)
            if ann is None:
                s = self.data.crop_size
                y0, x0 = (img.shape[0] - s) // 2, (img.shape[1] - s) // 2
                out.append(to_tensor(img[y0 : y0 + s, x0 : x0 + s]))
            else:
                out.append(self._object_crop(img, None, ann)[0])
        return torch.stack(out)
