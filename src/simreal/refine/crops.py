"""Crop-refine-reinsert geometry, batched with ``grid_sample``: fixed-size (optionally rotated) crops
around objects, and the inverse warp that writes refined crops back.

Reinsertion composites the *change* a refiner made, ``refined − crop``, warped back to the image and
weighted by a feathered window (so overlapping crops blend without seams) and by the object's blend
mask (so only the object changes). An identity refiner therefore returns the input bit for bit, and
pixels outside the blend mask are never touched.

Coordinates are pixel centres: pixel (x, y) sits at integer (x, y). A crop of side S centred at c has
its pixel (a, b) at c + R(θ)·(a − (S−1)/2, b − (S−1)/2); centres are snapped so unrotated crops sit on
the pixel grid.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def snap_centers(centers: Tensor, size: int) -> Tensor:
    """Centres moved so an unrotated crop's pixels coincide with image pixels."""
    return torch.round(centers - size / 2) + (size - 1) / 2


def upright_angles(centers: Tensor, image_center: tuple[float, float]) -> Tensor:
    """Angles θ that turn the direction from the image centre to each object into the crop's "up"
    (for ceiling fisheye views, where people lie along radii)."""
    v = centers - torch.tensor(image_center, dtype=centers.dtype)
    ang = torch.atan2(v[:, 0], -v[:, 1])
    return torch.where(v.norm(dim=1) > 1e-9, ang, torch.zeros_like(ang))


def _rot(angles: Tensor) -> Tensor:
    c, s = torch.cos(angles), torch.sin(angles)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (N, 2, 2)


def _to_grid(points: Tensor, width: int, height: int) -> Tensor:
    """Pixel-centre coordinates (..., 2) to grid_sample's normalised coordinates (align_corners=False)."""
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=points.dtype)
    return (points + 0.5) * scale - 1.0


def crop_grid(centers: Tensor, angles: Tensor, size: int, width: int, height: int) -> Tensor:
    """Sampling grid (N, S, S, 2) of the crops in the image's normalised coordinates."""
    r = torch.arange(size, dtype=centers.dtype) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    offs = torch.stack([xx, yy], -1).reshape(-1, 2)  # (S*S, 2) as (x, y)
    pts = centers[:, None, :] + offs[None] @ _rot(angles).transpose(1, 2)
    return _to_grid(pts, width, height).reshape(len(centers), size, size, 2)


def extract_crops(
    image: Tensor,
    centers: Tensor,
    angles: Tensor,
    size: int,
    mode: str = "bilinear",
    padding_mode: str = "reflection",
) -> Tensor:
    """Crops (N, C, S, S) from one image (C, H, W) around snapped ``centers`` (N, 2, pixels) at ``angles``."""
    _, h, w = image.shape
    n = len(centers)
    if n == 0:
        return image.new_zeros((0, image.shape[0], size, size))
    grid = crop_grid(centers.to(image.dtype), angles.to(image.dtype), size, w, h)
    out = F.grid_sample(
        image[None],
        grid.reshape(1, n * size, size, 2),
        mode=mode,
        padding_mode=padding_mode,
        align_corners=False,
    )
    return out.reshape(image.shape[0], n, size, size).permute(1, 0, 2, 3)


def feather_window(size: int, feather: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """(S, S) separable raised-cosine window: 1 in the middle, falling towards 0 over ``feather``·S at the
    borders (a constant 1 when feather is 0). Strictly positive inside the crop."""
    if feather <= 0:
        return torch.ones(size, size, dtype=dtype)
    ramp_len = max(feather * size, 1.0)
    d = torch.minimum(
        torch.arange(size, dtype=torch.float64) + 0.5, size - 0.5 - torch.arange(size, dtype=torch.float64)
    )
    t = torch.clamp(d / ramp_len, 0, 1)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * t)
    return (ramp[:, None] * ramp[None, :]).to(dtype)


def reinsert_deltas(
    image_shape: tuple[int, int, int],
    deltas: Tensor,
    centers: Tensor,
    angles: Tensor,
    feather: float = 0.25,
) -> tuple[Tensor, Tensor]:
    """Warp crop-space changes (N, C, S, S) back into image space.

    Returns the window-weighted mean change (C, H, W) and the window coverage (H, W) (sum of windows)."""
    c, h, w = image_shape
    n, _, size, _ = deltas.shape
    dtype = deltas.dtype
    num = torch.zeros(c, h * w, dtype=dtype)
    den = torch.zeros(h * w, dtype=dtype)
    if n == 0:
        return num.view(c, h, w), den.view(h, w)
    rotated = bool((angles.abs() > 1e-12).any())
    side = int(math.ceil(size * math.sqrt(2))) + 3 if rotated else size + 2
    win = feather_window(size, feather, dtype)
    src = torch.cat([deltas * win, win.expand(n, 1, size, size)], 1)  # (N, C+1, S, S)
    origin = torch.floor(centers - side / 2).to(torch.long)  # (N, 2) region top-left (x, y)
    r = torch.arange(side)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    px = origin[:, 0, None, None] + xx[None]  # (N, side, side)
    py = origin[:, 1, None, None] + yy[None]
    pts = torch.stack([px, py], -1).to(dtype) - centers[:, None, None, :].to(dtype)
    # crop coordinates: R(-θ)(p - c) + (S-1)/2
    local = torch.einsum("nij,nhwj->nhwi", _rot(-angles.to(dtype)), pts) + (size - 1) / 2
    grid = _to_grid(local, size, size)
    vals = F.grid_sample(
        src, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (N, C+1, s, s)
    valid = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    idx = (py * w + px)[valid]
    v = vals.permute(1, 0, 2, 3)[:, valid]  # (C+1, K)
    num.index_add_(1, idx, v[:c])
    den.index_add_(0, idx, v[c])
    mean = torch.where(den > 1e-8, num / den.clamp_min(1e-8), torch.zeros_like(num))
    return mean.view(c, h, w), den.view(h, w)


def blend_mask(
    instance_mask: np.ndarray | None, instance_ids: list[int], shape: tuple[int, int], dilate: int = 0
) -> Tensor | None:
    """Float (H, W) mask of the given instances (None when there is no mask), grown by ``dilate`` px."""
    if instance_mask is None:
        return None
    m = torch.from_numpy(np.isin(instance_mask, np.asarray(instance_ids, dtype=instance_mask.dtype)))
    m = m.to(torch.float32)
    if dilate > 0:
        m = F.max_pool2d(m[None, None], 2 * dilate + 1, stride=1, padding=dilate)[0, 0]
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"mask shape {tuple(m.shape)} differs from image shape {tuple(shape)}")
    return m


def composite(image_u8: np.ndarray, mean_delta: Tensor, coverage: Tensor, mask: Tensor | None) -> np.ndarray:
    """Add the change (in [-1, 1] units) to the uint8 image inside the mask; pixels with no change or
    outside the mask keep their exact values."""
    img = torch.from_numpy(image_u8.astype(np.float32))
    if img.ndim == 2:
        img = img[:, :, None]
    weight = coverage.clamp(max=1.0) if mask is None else mask * (coverage > 1e-8).to(mask.dtype)
    change = (mean_delta * weight[None]).permute(1, 2, 0) * 127.5
    out = torch.where(change != 0, (img + change).round().clamp(0, 255), img)
    out_np = out.to(torch.uint8).numpy()
    return out_np[:, :, 0] if image_u8.ndim == 2 else out_np


def ann_angle(ann: dict) -> float | None:
    """An annotation's upright crop angle in radians from its ``rotation`` (degrees clockwise from
    image-up, as people-scene annotations carry it), or None."""
    r = ann.get("rotation")
    return None if r is None else math.radians(float(r))


def ann_center(ann: dict) -> tuple[float, float] | None:
    """An annotation's centre in pixel-centre coordinates: its ``point`` [x, y], its box centre, or the
    mean of its visible keypoints; None when it has none of these."""
    if ann.get("point") is not None:
        x, y = ann["point"][:2]
        return float(x), float(y)
    bbox = ann.get("bbox")
    if bbox and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0:
        return float(bbox[0] + bbox[2] / 2 - 0.5), float(bbox[1] + bbox[3] / 2 - 0.5)
    kps = ann.get("keypoints")
    if kps:
        pts = [(kps[i], kps[i + 1]) for i in range(0, len(kps) - 2, 3) if kps[i + 2] > 0]
        if pts:
            return float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts]))
    return None


def crop_refine_reinsert(
    image_u8: np.ndarray,
    centers: np.ndarray,
    refine: object,
    size: int,
    *,
    instance_mask: np.ndarray | None = None,
    instance_ids: list[int] | None = None,
    rotate_upright: bool = False,
    image_center: tuple[float, float] | None = None,
    angles: np.ndarray | None = None,
    feather: float = 0.25,
    dilate: int = 0,
    batch_size: int = 16,
    reinsert: str = "delta",
) -> np.ndarray:
    """Refine the objects at ``centers`` of one uint8 image (HxW or HxWx3) and return the new image.

    ``refine`` maps a (B, C, S, S) tensor in [-1, 1] to the same shape. With an instance mask and
    ``instance_ids``, only those instances' pixels change; without one the feathered crop windows
    blend the change in. ``angles`` (radians, one per object, e.g. the annotations' ``rotation``)
    replace the upright angles computed from ``image_center`` when ``rotate_upright``."""
    h, w = image_u8.shape[:2]
    if h < size or w < size:
        raise ValueError(f"image is {w}x{h}, smaller than the crop size {size}")
    if len(centers) == 0:
        return image_u8.copy()
    arr = image_u8[:, :, None] if image_u8.ndim == 2 else image_u8
    img = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float() / 127.5 - 1.0
    ctr = snap_centers(torch.as_tensor(np.asarray(centers, dtype=np.float64)).float(), size)
    if rotate_upright and angles is not None:
        angles = torch.as_tensor(np.asarray(angles, dtype=np.float64)).float()
    elif rotate_upright:
        z = image_center if image_center is not None else ((w - 1) / 2, (h - 1) / 2)
        angles = upright_angles(ctr, z)
    else:
        angles = torch.zeros(len(ctr))
    crops = extract_crops(img, ctr, angles, size)
    deltas = []
    with torch.no_grad():
        for i in range(0, len(crops), batch_size):
            chunk = crops[i : i + batch_size]
            refined = refine(chunk)  # type: ignore[operator]
            deltas.append(refined - chunk if reinsert == "delta" else refined)
    delta = torch.cat(deltas, 0)
    mean, cov = reinsert_deltas(tuple(img.shape), delta, ctr, angles, feather)
    if reinsert == "replace":
        mean = torch.where(cov[None] > 1e-8, mean - img, torch.zeros_like(mean))
    mask = blend_mask(instance_mask, instance_ids or [], (h, w), dilate) if instance_ids is not None else None
    return composite(image_u8, mean, cov, mask)
