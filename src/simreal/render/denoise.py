"""Intel Open Image Denoise on the beauty pass (optional: ``pip install 'simreal[denoise]'``).

Measured by ``benchmarks/render_denoise.py``: on the high tier at 4-16 spp it beats plain path
tracing at equal time only when the image is rendered with a **box** pixel filter (OIDN expects
independent per-pixel noise; Mitsuba's default gaussian filter splats each sample over neighbours,
and that correlated noise survives the denoiser almost untouched) and given the colour alone
(albedo and normal AOVs cost more time than they gain here). Input: linear HDR radiance, float32
(H, W, 3), ``hdr=True``; one thread per worker, like the renderer.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from simreal.errors import ConfigError

INSTALL_HINT = "render.denoise needs the pyoidn package: pip install 'simreal[denoise]' (or set render.denoise: false)"


def available() -> bool:
    """Whether pyoidn can be imported."""
    import importlib.util

    return importlib.util.find_spec("pyoidn") is not None


@functools.lru_cache(maxsize=4)
def _device(threads: int) -> Any:
    try:
        import pyoidn
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    dev = pyoidn.Device()
    dev.set_int("numThreads", int(threads))
    dev.commit()
    return dev


def denoise(rgb: np.ndarray, threads: int = 1) -> np.ndarray:
    """Denoised copy of linear HDR radiance ``rgb`` (H, W, 3); negative values are clipped first."""
    import pyoidn

    dev = _device(threads)
    color = np.ascontiguousarray(np.maximum(rgb, 0.0), dtype=np.float32)
    if color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f"denoise: expected (H, W, 3) radiance, got {color.shape}")
    out = np.empty_like(color)
    flt = pyoidn.Filter(dev, "RT")
    try:
        flt.set_image(pyoidn.OIDN_IMAGE_COLOR, color, pyoidn.OIDN_FORMAT_FLOAT3)
        flt.set_image(pyoidn.OIDN_IMAGE_OUTPUT, out, pyoidn.OIDN_FORMAT_FLOAT3)
        flt.set_bool("hdr", True)
        flt.commit()
        flt.execute()
        err = dev.get_error()
    finally:
        flt.release()
    if err:
        raise RuntimeError(f"Open Image Denoise failed: {err}")
    return out
