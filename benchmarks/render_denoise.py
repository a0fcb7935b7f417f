"""Does a denoiser buy fewer samples at equal quality? Intel Open Image Denoise (``pyoidn``) on the
high tier's beauty pass, against plain path tracing, measured as PSNR against a 512-spp reference
per second spent (rendering + denoising, one thread each, as a render worker runs).

For a few scenes of the ``high`` tier (objects over the hidden environment: the pass the tier
denoises; the background is composited exactly and is not counted), it renders 4..64 spp plain (the
tier's gaussian pixel filter) and 4, 8, 16, 32 spp denoised (colour only, and colour + albedo + normal
AOVs at up to 4 spp), each with the gaussian filter and with a box filter (OIDN expects
uncorrelated per-pixel noise; a wide filter spreads each sample over neighbours, and correlated
noise looks like texture to the network), tone maps every result with
the reference's exposure, and reports PSNR over the pixels the objects cover. The denoiser "wins"
at a setting when its PSNR beats plain rendering at the same time (plain PSNR interpolated linearly
in log time between the measured spp).

Input/output checks printed first: the input is linear HDR float32 (H, W, 3) with ``hdr=True``; the
output differs from the input; denoising a flat grey image with gaussian noise cuts its noise; the
512-spp reference barely changes.

Usage: python benchmarks/render_denoise.py [--scenes 4] [--resolution 256]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from simreal.config import load_config
from simreal.render import film
from simreal.render.api import tier_path
from simreal.render.backends.mitsuba import MitsubaBackend
from simreal.render.build import build_scene
from simreal.render.compositing import environment_background
from simreal.render.library import build_library
from simreal.render.randomize import sample_params
from simreal.render.spec import SceneConfig
from simreal.runtime.seeding import sample_rng, sample_seed

PLAIN = (4, 8, 16, 32, 64)
DENOISED = (4, 8, 16, 32)


def make_denoiser(threads: int = 1):  # noqa: ANN201 - returns a closure
    import pyoidn

    dev = pyoidn.Device()
    dev.set_int("numThreads", threads)
    dev.commit()

    def run(color: np.ndarray, albedo: np.ndarray | None = None, normal: np.ndarray | None = None) -> np.ndarray:
        color = np.ascontiguousarray(color, dtype=np.float32)
        assert color.ndim == 3 and color.shape[2] == 3 and (color >= 0).all()
        out = np.empty_like(color)
        flt = pyoidn.Filter(dev, "RT")
        flt.set_image(pyoidn.OIDN_IMAGE_COLOR, color, pyoidn.OIDN_FORMAT_FLOAT3)
        for aux in (albedo, normal):
            assert aux is None or aux.shape == color.shape, "auxiliary images must match the colour image"
        if albedo is not None:
            flt.set_image(pyoidn.OIDN_IMAGE_ALBEDO, np.ascontiguousarray(albedo, np.float32), pyoidn.OIDN_FORMAT_FLOAT3)
        if normal is not None:
            flt.set_image(pyoidn.OIDN_IMAGE_NORMAL, np.ascontiguousarray(normal, np.float32), pyoidn.OIDN_FORMAT_FLOAT3)
        flt.set_image(pyoidn.OIDN_IMAGE_OUTPUT, out, pyoidn.OIDN_FORMAT_FLOAT3)
        flt.set_bool("hdr", True)
        flt.commit()
        flt.execute()
        err = dev.get_error()
        flt.release()
        if err:
            raise RuntimeError(f"OIDN: {err}")
        return out

    return run


def aovs(be: MitsubaBackend, scene, spp: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Albedo and shading-normal AOVs at ``spp`` (the denoiser's auxiliary inputs)."""
    mi = be.mi
    mscene = be._scene(dataclasses.replace(scene, spp=spp), list(range(len(scene.instances))), True)
    integ = mi.load_dict({"type": "aov", "aovs": "al:albedo,nn:sh_normal"})
    out = np.array(mi.render(mscene, integrator=integ, seed=1, spp=spp), dtype=np.float32)
    assert out.shape[-1] == 6, out.shape
    return out[..., 0:3], out[..., 3:6]


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = float(((a[mask] - b[mask]) ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def display(rgba: np.ndarray, env: np.ndarray, k: float) -> np.ndarray:
    frame = rgba[..., :3] + env * (1 - np.clip(rgba[..., 3:4], 0, 1))
    return film.develop(frame * k, "filmic")


def checks(denoise) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    flat = np.full((128, 128, 3), 0.18, np.float32)
    noisy = np.clip(flat + rng.normal(0, 0.05, flat.shape).astype(np.float32), 0, None)
    out = denoise(noisy)
    print(f"check: flat 0.18 + N(0, 0.05): noise std {noisy.std():.4f} -> {out.std():.4f} "
          f"(mean {noisy.mean():.4f} -> {out.mean():.4f}); output dtype {out.dtype}, shape {out.shape}")
    hdr = noisy * 50.0
    out_hdr = denoise(hdr)
    print(f"check: same x50 (HDR): std {hdr.std():.3f} -> {out_hdr.std():.3f}, mean {hdr.mean():.3f} -> "
          f"{out_hdr.mean():.3f} (hdr=True keeps radiance, not clipped to 1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    import drjit as dr

    print(f"load: {os.getloadavg()}")
    denoise = make_denoiser(1)
    checks(denoise)
    cfg = load_config(SceneConfig, tier_path("high"), {"resolution": [args.resolution] * 2})
    lib = build_library(cfg)
    be = MitsubaBackend(threads=1)
    dr.set_thread_count(1)
    rows: dict[str, list[tuple[float, float]]] = {}
    idx = 0
    done = 0
    while done < args.scenes:
        params = sample_params(cfg, lib, sample_rng(args.seed, idx))
        idx += 1
        if params["negative"]:
            continue
        scene = build_scene(cfg, lib, params, sample_seed(args.seed, idx))
        ref = be.render(dataclasses.replace(scene, spp=512, seed=scene.seed + 1))
        mask = ref[..., 3] > 0.01
        if mask.sum() < 200:
            continue
        done += 1
        env = environment_background(scene)
        k = film.exposure_scale(ref[..., :3] + env * (1 - ref[..., 3:4]), 0.18)
        ref_img = display(ref, env, k)
        out = denoise(ref[..., :3])
        print(f"scene {idx - 1}: {int(mask.sum())} object pixels; reference denoised changes PSNR to "
              f"{psnr(display(np.concatenate([out, ref[..., 3:]], -1), env, k), ref_img, mask):.1f} dB")
        for spp in PLAIN:
            t0 = time.perf_counter()
            img = be.render(dataclasses.replace(scene, spp=spp))
            rows.setdefault(f"plain {spp}", []).append((time.perf_counter() - t0,
                                                        psnr(display(img, env, k), ref_img, mask)))
        for filt in ("gaussian", "box"):
            for spp in DENOISED:
                t0 = time.perf_counter()
                img = be.render(dataclasses.replace(scene, spp=spp, pixel_filter=filt))
                t_render = time.perf_counter() - t0
                t0 = time.perf_counter()
                den = denoise(img[..., :3])
                t_den = time.perf_counter() - t0
                rows.setdefault(f"{filt} + oidn {spp}", []).append(
                    (t_render + t_den, psnr(display(np.concatenate([den, img[..., 3:]], -1), env, k), ref_img, mask)))
                t0 = time.perf_counter()
                al, nn = aovs(be, dataclasses.replace(scene, pixel_filter=filt), min(spp, 4))
                den = denoise(img[..., :3], al, nn)
                t_aux = time.perf_counter() - t0
                rows.setdefault(f"{filt} + oidn+aux {spp}", []).append(
                    (t_render + t_aux, psnr(display(np.concatenate([den, img[..., 3:]], -1), env, k), ref_img, mask)))
    print(f"\n{done} scenes at {args.resolution}²; PSNR (dB) over object pixels vs 512 spp, display values\n")
    print("| setting | seconds/image | PSNR dB | plain PSNR at the same time | wins |")
    print("|---|---|---|---|---|")
    plain = sorted((np.mean([r[0] for r in rows[f"plain {s}"]]), np.mean([r[1] for r in rows[f"plain {s}"]]))
                   for s in PLAIN)
    pt, pp = np.log([p[0] for p in plain]), [p[1] for p in plain]
    for name, vals in rows.items():
        t = float(np.mean([v[0] for v in vals]))
        q = float(np.mean([v[1] for v in vals]))
        if name.startswith("plain"):
            print(f"| {name} spp | {t:.2f} | {q:.2f} | | |")
        else:
            at = float(np.interp(np.log(t), pt, pp))
            print(f"| {name} spp | {t:.2f} | {q:.2f} | {at:.2f} | {'yes' if q > at else 'no'} |")
    print(f"\nload: {os.getloadavg()}")


if __name__ == "__main__":
    main()
