"""Matching rendered elements to the photograph they are composited on (the *plate*).

A photograph has already been through a camera once: its noise, blur and compression are part of
it. A compositor therefore gives the rendered elements the plate's look and leaves the plate alone:

- ``estimate_noise``: the plate's noise per channel (Donoho's wavelet median estimator, scikit-image's
  ``estimate_sigma``), in display units [0, 1];
- ``match_noise``: that much gaussian noise added to the rendered objects only (a denoised render is
  otherwise cleaner than the photo around it);
- ``rendered_region``: where the render changed the plate (objects and their shadows), feathered;
- ``post_on_rendered``: camera effects (blur, grain, JPEG) applied only there, so the photo's own
  pixels come through once, not re-processed (no LUT grade or vignette: those are looks of a whole
  frame, which the photo already has).
"""

from __future__ import annotations

import numpy as np

from simreal.render.post import apply_post

REACH_PX = 3.0  # how far past the drawn pixels the effects fade out (covers a blur of sigma <= 1)


def estimate_noise(photo: np.ndarray) -> np.ndarray:
    """Noise standard deviation of each channel of a uint8 (H, W, 3) image, in [0, 1] display units."""
    from skimage.restoration import estimate_sigma

    x = np.asarray(photo, np.float64) / 255.0
    return np.array([float(estimate_sigma(x[..., c])) for c in range(x.shape[-1])])


def match_noise(image: np.ndarray, sigma: np.ndarray, weight: np.ndarray, seed: int) -> np.ndarray:
    """Add gaussian noise of std ``sigma`` (per channel, display units) where ``weight`` (H, W in [0, 1])
    is 1, none where it is 0; uint8 in, uint8 out. Channels with equal sigma and equal values (a
    monochrome photo) get the same noise, so a grey image stays grey."""
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    gen = np.random.default_rng([int(seed), 0x9A7E])
    sigma = np.asarray(sigma, np.float32).reshape(-1)
    mono = img.ndim == 3 and bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())
    field = gen.standard_normal((h, w, 1 if mono else img.shape[-1]), dtype=np.float32)
    noise = field * (float(sigma.mean()) if mono else sigma) * 255.0
    out = img + noise * np.asarray(weight, np.float32)[..., None]
    return (np.clip(out, 0.0, 255.0) + 0.5).astype(np.uint8)


def rendered_region(alpha: np.ndarray, ratio: np.ndarray | None, reach: float = REACH_PX) -> np.ndarray:
    """Weight (H, W) in [0, 1]: 1 on pixels the render drew (coverage ``alpha`` > 0) or shaded (``ratio``
    < 1), falling to 0 over ``reach`` pixels around them (a distance ramp), exactly 0 beyond."""
    from scipy.ndimage import distance_transform_edt

    drawn = np.asarray(alpha) > 0
    if ratio is not None:
        drawn |= np.any(np.asarray(ratio) < 1.0, axis=-1)
    if not drawn.any():
        return np.zeros(drawn.shape, np.float32)
    dist = distance_transform_edt(~drawn)
    return np.clip(1.0 - dist / max(reach, 1e-6), 0.0, 1.0).astype(np.float32)


def post_on_rendered(image: np.ndarray, params: dict, weight: np.ndarray, luts: dict | None = None) -> np.ndarray:
    """Blur, grain and JPEG from post ``params`` applied to the whole frame, then kept only by ``weight``;
    the photo's pixels where ``weight`` is 0 come through bit for bit. LUT and vignette are not applied."""
    local = {**params, "lut": None, "vignette": None}
    processed = apply_post(image, local, luts).astype(np.float32)
    w = np.asarray(weight, np.float32)[..., None]
    out = processed * w + np.asarray(image, np.float32) * (1.0 - w)
    out = (np.clip(out, 0.0, 255.0) + 0.5).astype(np.uint8)
    keep = w[..., 0] <= 0.0
    out[keep] = image[keep]
    return out
