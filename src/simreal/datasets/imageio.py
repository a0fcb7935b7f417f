"""Image and mask encoding: PNG/JPEG bytes for RGB images, 16-bit PNG for instance masks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from simreal.errors import DatasetError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def encode_image(rgb: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode an HxW or HxWx3 uint8 array as PNG or JPEG bytes."""
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 image, got {rgb.dtype}")
    buf = io.BytesIO()
    img = Image.fromarray(rgb)
    if fmt.lower() in ("jpg", "jpeg"):
        img.save(buf, format="JPEG", quality=int(quality))
    else:
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def image_mode(channels: int) -> str:
    """The PIL mode images are read in for a model with ``channels`` input channels."""
    return "L" if channels == 1 else "RGB"


def resize_image(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 HxW or HxWx3 image resized to ``size`` (H, W) with PIL bilinear: the resize of training
    (and of everything that scores images with a trained model)."""
    return np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def encode_mask(mask: np.ndarray) -> bytes:
    """Encode an HxW instance-id array (0 = background) as a 16-bit PNG."""
    if mask.ndim != 2:
        raise ValueError("mask must be 2-D")
    if mask.size and int(mask.max()) > 65535:
        raise ValueError("instance ids must fit in 16 bits")
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint16)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def read_image(path: str | Path, mode: str = "RGB") -> np.ndarray:
    """Read an image file as uint8 (``mode`` "RGB" or "L"); a clear error names a bad file."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            return np.asarray(img.convert(mode))
    except FileNotFoundError:
        raise DatasetError(f"{p}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{p}: unreadable image ({exc.__class__.__name__})") from None


def read_mask(path: str | Path) -> np.ndarray:
    """Read a 16-bit instance mask PNG as uint16."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            arr = np.asarray(img)
    except FileNotFoundError:
        raise DatasetError(f"{p}: mask file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{p}: unreadable mask ({exc.__class__.__name__})") from None
    if arr.ndim != 2:
        raise DatasetError(f"{p}: expected a single-channel 16-bit mask, got shape {arr.shape}")
    return arr.astype(np.uint16)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
