"""One sample, end to end, as a pure function of (config, root seed, index): sample params, build
the scene, render image and labels, annotate, post-process, encode. Runs in any worker."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from simreal.datasets.coco import IMAGES_DIR, SIMREAL
from simreal.datasets.imageio import encode_image, encode_mask
from simreal.render.annotate import amodal_box, annotate
from simreal.render.backends.mitsuba import MitsubaBackend
from simreal.render.build import background_image, build_scene, composite
from simreal.render.crop import crop_samples
from simreal.render.library import cached_library
from simreal.render.randomize import sample_params
from simreal.render.scene import SceneData
from simreal.render.spec import SceneConfig
from simreal.runtime.seeding import sample_rng, sample_seed

_backends: dict[str, MitsubaBackend] = {}


def _backend(variant: str) -> MitsubaBackend:
    if variant not in _backends:
        _backends[variant] = MitsubaBackend(variant, threads=1)
    return _backends[variant]


def render_sample(task: tuple[str, int, int]) -> dict[str, Any]:
    """Render sample ``index`` of the job. Returns encoded files and JSON-ready records."""
    cfg_json, root_seed, index = task
    t0 = time.perf_counter()
    cfg, lib = cached_library(cfg_json)
    rng = sample_rng(root_seed, index)
    seed = sample_seed(root_seed, index)
    params = sample_params(cfg, lib, rng)
    scene = build_scene(cfg, lib, params, seed)
    backend = _backend(cfg.render.variant)
    backend.render_seconds = backend.scene_seconds = 0.0
    rgba, labels = backend.render_with_labels(scene)
    assert labels is not None
    if cfg.render.denoise:
        from simreal.render.denoise import denoise

        rgba[..., :3] = denoise(rgba[..., :3])
    target_labels = sorted({inst.label for inst in scene.instances if inst.label > 0})
    amodal = {}
    inst_label = np.array([0] + [inst.label for inst in scene.instances])
    pixel_label = inst_label[labels]
    for k in target_labels:
        idx = [i for i, inst in enumerate(scene.instances) if inst.label == k]
        amodal[k] = amodal_mask(backend, scene, labels, pixel_label, idx, k)
    mask, anns = annotate(scene, labels, amodal, cfg.annotation.min_visibility)
    region = None
    if cfg.photographic:
        image, region = photographic_image(cfg, params, scene, backend, rgba, seed)
    else:
        image = composite(rgba, background_image(cfg, params))
    if params["post"] and region is not None:
        from simreal.render.plate import post_on_rendered

        image = post_on_rendered(image, params["post"], region, lib.luts)
    elif params["post"]:
        from simreal.render.post import apply_post

        image = apply_post(image, params["post"], lib.luts)
    render_s, scene_s = backend.render_seconds, backend.scene_seconds
    ext = "jpg" if cfg.image_format == "jpg" else "png"
    files: dict[str, bytes] = {}
    records: list[dict[str, Any]] = []
    if cfg.crop.enabled:
        for j, (crop_img, crop_mask, crop_rec, crop_anns) in enumerate(
            crop_samples(image, mask, anns, params, cfg.crop, rng_seed=seed)
        ):
            name = f"{index:07d}_{j:02d}"
            files[f"{IMAGES_DIR}/{name}.{ext}"] = encode_image(crop_img, ext)
            files[f"masks/{name}.png"] = encode_mask(crop_mask)
            crop_rec.update({"file_name": f"{name}.{ext}", "mask_file": f"masks/{name}.png"})
            records.append({"record": crop_rec, "anns": crop_anns})
    else:
        name = f"{index:07d}"
        files[f"{IMAGES_DIR}/{name}.{ext}"] = encode_image(image, ext)
        files[f"masks/{name}.png"] = encode_mask(mask)
        visible = [a for a in anns if not a[SIMREAL]["ignore"]] or anns
        label = 0 if not visible else max(visible, key=lambda a: a["area"])["category_id"]
        rec = {"file_name": f"{name}.{ext}", "mask_file": f"masks/{name}.png",
               "width": int(image.shape[1]), "height": int(image.shape[0]), "label": int(label)}
        records.append({"record": rec, "anns": anns})
    total = time.perf_counter() - t0
    for r in records:
        r["record"].update({"domain": "synthetic", "sample": index, "seed": seed, "params": params})
    return {
        "index": index,
        "seed": seed,
        "files": files,
        "records": records,
        "timings": {"total": total, "render": render_s, "scene": scene_s, "other": total - render_s},
        "params": params,
    }


def photographic_image(cfg: SceneConfig, params: dict[str, Any], scene: SceneData, backend: MitsubaBackend,
                       rgba: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Objects over the photo or environment with their shadows, auto-exposed and tone mapped; and, when
    ``film.post_scope`` is ``rendered`` and the background is a capture (a photo or the environment map),
    the region the post effects are confined to (``simreal.render.plate``; None: the whole frame)."""
    from simreal.render.compositing import (
        environment_background,
        environment_upsampling,
        finish,
        scene_irradiance,
        shadow_ratio,
        soften,
    )
    from simreal.render.film import to_uint8

    bg = params["background"]
    photo_like = bg["kind"] == "procedural" or (bg["kind"] == "photo" and bg.get("mode") != "envmap")
    if photo_like and bg["kind"] == "photo":  # the crop is enlarged to the image: objects no sharper than it
        from simreal.render.build import cached_photo
        from simreal.render.library import resolve_folder
        from simreal.render.randomize import photo_crop_box

        src = cached_photo(str(resolve_folder(str(cfg.background.photo_folder)) / bg["file"]))
        rgba = soften(rgba, cfg.resolution[0] / photo_crop_box(bg, (src.shape[1], src.shape[0]), cfg.resolution)[2])
    elif bg["kind"] == "environment" and cfg.film.post_scope == "rendered":  # nor sharper than the map
        rgba = soften(rgba, environment_upsampling(scene))
    ratio = None
    if cfg.placement.grounded and cfg.background.ground.shadow_catcher and bg["kind"] in ("photo", "environment"):
        g = cfg.background.ground
        ratio = shadow_ratio(backend, scene, g.catcher_spp, rgba[..., 3], scale=g.catcher_scale)
    key = params["film"]["key"] if cfg.film.auto_exposure else None
    ev = float(params["camera"]["exposure"])
    if photo_like:
        photo = to_uint8(background_image(cfg, params))
        image, _ = finish(rgba, ratio, photo=photo, key=key, curve=cfg.film.tone,
                          irradiance=scene_irradiance(scene), ev=ev)
        if cfg.film.match_noise:
            from simreal.render.plate import estimate_noise, match_noise

            image = match_noise(image, estimate_noise(photo), np.clip(rgba[..., 3], 0.0, 1.0), seed)
    else:
        image, _ = finish(rgba, ratio, environment=environment_background(scene), key=key, curve=cfg.film.tone,
                          ev=ev)
    if cfg.film.post_scope != "rendered" or bg["kind"] not in ("photo", "environment"):
        return image, None  # a procedural backdrop or an old tier: the whole frame is this camera's
    from simreal.render.plate import rendered_region

    return image, rendered_region(rgba[..., 3], ratio)


def amodal_mask(backend: MitsubaBackend, scene: Any, labels: np.ndarray, pixel_label: np.ndarray, idx: list[int],
                k: int) -> np.ndarray:
    """Target ``k``'s unoccluded mask: its visible pixels, plus the pixels inside its projected box
    where another surface is hit first but the same pixel-centre ray, continued through the
    occluders, reaches the target. Pixels whose ray hits nothing cannot show the target."""
    mask = pixel_label == k
    box = amodal_box(scene, idx)
    if box is None:
        return mask
    h, w = labels.shape
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[0] + box[2])) + 1), min(h, int(np.ceil(box[1] + box[3])) + 1)
    if x0 >= x1 or y0 >= y1:
        return mask
    window = np.zeros_like(mask)
    window[y0:y1, x0:x1] = True
    candidates = np.argwhere(window & (labels > 0) & (pixel_label != k))
    if len(candidates):
        hit = backend.see_through(scene, candidates, set(idx))
        mask = mask.copy()
        mask[candidates[hit, 0], candidates[hit, 1]] = True
    return mask
