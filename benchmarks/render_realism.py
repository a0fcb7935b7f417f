"""A realism proxy for the render tiers: how well does a fresh small CNN tell real photo crops from
render crops? 50 % held-out accuracy means indistinguishable (to this judge).

Real crops: the photographs shipped in scikit-learn, scikit-image and matplotlib (natural scenes
only: no logos, text, colour wheels or micrographs), and perspective views of held-out HDR
environments (three of blender-data's eight maps), each view exposed automatically and developed
with one of three common camera curves at random (clip, Reinhard, filmic), so no single tone curve
marks "real". Render crops: ``--count`` images of each tier (low, high_v1 = the first high tier,
high = the current one), all at 256², all with the same background photos, which are never in the
real set (the builtin ground photos: camera, motorcycles, coffee, brick, grass, gravel), and the
new tier lights with the five HDR maps not held out. Every image gives ``--crops`` random square
crops (64-128 px of a 256 px image, real photos first scaled to 256 px on their short side),
resized to 64².

Four protocols, each 5-fold cross-validation repeated ``--repeats`` times with fresh shuffles (sklearn's
StratifiedGroupKFold), a fresh ``simreal.nn.SmallCNN`` per fold; reported: balanced held-out accuracy,
mean ± std over all folds.

- ``natural`` (the first reading of the issue): real = the natural photos (not the renders' background photos)
  + held-out HDR views; groups: an HDR view
  sector, a photo, a render never straddles train and test. Weakness: the renders' background photos and
  HDR maps never occur in the real class, so a judge can call a crop "render" from its *content* alone
  (a crop of gravel is a render crop in every fold), whatever the tier does to make it look photographic.
- ``literal`` (the issue's words: "the photos shipped in scikit-learn, scikit-image and matplotlib, plus
  perspective crops of held-out HDR environments"): real = every shipped photo, the renders' background
  photos included, + the held-out HDR views; groups are sources, as in ``controlled``. The five render HDR
  maps are not in the real class, so renders over them can still be told by content.
- ``controlled`` (content-controlled): the real class also holds raw crops of every render background
  (the seven photos as they are, views of the five render HDR maps developed like the held-out ones), and
  the groups are *sources*: a background photo's raw crops and every render crop on it share one group,
  likewise an HDR map's views and the renders it is visible in (renders on procedural backdrops are a
  group each). Test folds hold backgrounds the judge never saw in either class, so content cannot
  mark "render": what is left is the object, its lighting, shadows and contact, and the film.
- ``object``: as ``controlled``, but every render crop holds the rendered object (a random crop around its
  box; renders without one give random crops). A random crop of a render is often background only — a
  real photo labelled "render" — which caps what the judge can tell and hides differences between tiers;
  here it always sees what the renderer drew.

Also images/s of the two high tiers at 256² (2 workers, wall clock incl. start-up, and steady state)
from the same run.

Usage: python benchmarks/render_realism.py [--count 48] [--crops 8] [--repeats 3] [--work DIR] [--device auto]
    [--tiers low high_v1 high my_scene.yaml] [--empty]
(``--work`` keeps the rendered datasets so a rerun skips rendering).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from simreal.config import load_config
from simreal.nn.smallcnn import SmallCNN
from simreal.render import film
from simreal.render.api import tier_path
from simreal.render.camera import look_at
from simreal.render.job import render_dataset
from simreal.render.library import BUILTIN_GROUND_PHOTOS, GROUND_PHOTO_PERSPECTIVES, builtin_photos
from simreal.render.lighting import builtin_hdri_folder, env_radiance, load_hdr
from simreal.render.spec import SceneConfig
from simreal.runtime.device import resolve_device

REAL_PHOTOS = ("matplotlib-grace_hopper.jpg", "skimage-astronaut.png", "skimage-chelsea.png", "sklearn-china.jpg",
               "sklearn-flower.jpg", "skimage-rocket.jpg", "skimage-coins.png", "skimage-moon.png")
HELD_OUT_HDRS = ("courtyard.exr", "forest.exr", "sunset.exr")
TIERS = ("low", "high_v1", "high")
PROTOCOLS = ("natural", "literal", "controlled", "object")
SIZE = 64
RES = 256


def random_crops(img: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` random square crops (side 1/4..1/2 of 256 px) resized to SIZE²."""
    h, w = img.shape[:2]
    out = []
    pil = Image.fromarray(img)
    for _ in range(n):
        side = int(rng.integers(RES // 4, RES // 2 + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        out.append(np.asarray(pil.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=(x, y, x + side, y + side))))
    return out


def real_photo_crops(n: int, rng: np.random.Generator,
                     names: tuple[str, ...] = REAL_PHOTOS) -> tuple[list[np.ndarray], list[str]]:
    """``n`` crops of each builtin photo in ``names``, grouped ``photo:<name>``."""
    crops, groups = [], []
    for name in names:
        path = builtin_photos() / name
        if not path.exists():
            continue
        im = Image.open(path).convert("RGB")
        scale = RES / min(im.size)
        im = im.resize((max(RES, round(im.width * scale)), max(RES, round(im.height * scale))),
                       Image.Resampling.LANCZOS)
        for c in random_crops(np.asarray(im), n, rng):
            crops.append(c)
            groups.append(f"photo:{name}")
    return crops, groups


def develop_real(radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Auto-exposed, with a randomly chosen common tone curve, to sRGB uint8."""
    k = film.exposure_scale(radiance, 0.18) * 2 ** rng.uniform(-0.5, 0.5)
    x = radiance * k
    curve = rng.integers(3)
    if curve == 0:
        y = np.clip(x, 0, 1)
    elif curve == 1:
        lum = film.luminance(x)[..., None]
        y = x / (1 + lum)
    else:
        y = film.filmic(x)
    return film.to_uint8(film.srgb_encode(y))


def hdr_view_crops(views: int, per_view: int, rng: np.random.Generator, names: tuple[str, ...] = HELD_OUT_HDRS,
                   whole_map_groups: bool = False) -> tuple[list[np.ndarray], list[str]]:
    """Crops of ``views`` random perspective views of each HDR map, grouped by 90° sector
    (``hdr:<name>:<k>``) or, with ``whole_map_groups``, by map (``hdrmap:<name>``)."""
    folder = builtin_hdri_folder()
    crops, groups = [], []
    for name in names:
        env = load_hdr(str(folder / name))
        for _ in range(views):
            yaw, pitch = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(-35, 25))
            fov = rng.uniform(40, 75)
            d = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
            from simreal.render.camera import Camera

            cam = Camera(look_at(np.zeros(3), d, np.array([0.0, 0.0, 1.0])), RES, RES, fov=fov)
            dirs, _ = cam.pixel_rays()
            img = develop_real(env_radiance(env, dirs), rng)
            group = f"hdrmap:{name}" if whole_map_groups else f"hdr:{name}:{int(yaw // (np.pi / 2))}"
            for c in random_crops(img, per_view, rng):
                crops.append(c)
                groups.append(group)
    return crops, groups


def tier_name(tier: str) -> str:
    """A builtin tier's name, or a scene YAML's stem."""
    return Path(tier).stem if tier.endswith((".yaml", ".yml")) else tier


def render_tier(tier: str, count: int, work: Path, hdr_folder: Path, seed: int) -> tuple[Path, dict[str, float]]:
    """Render ``count`` images of a builtin tier or a scene YAML at 256² into ``work/<name>`` (resumes)."""
    overrides: dict[str, object] = {"count": count, "resolution": [RES, RES], "seed": seed,
                                    "background.photo_folder": BUILTIN_GROUND_PHOTOS}
    path = Path(tier) if tier.endswith((".yaml", ".yml")) else tier_path(tier)
    cfg = load_config(SceneConfig, path)
    if cfg.lighting.environment.kind == "hdr":
        overrides["lighting.environment.folder"] = str(hdr_folder)
    cfg = load_config(SceneConfig, path, overrides)
    out = work / tier_name(tier)
    s = render_dataset(cfg, out, workers=2, quiet=True)
    rate = {"wall": s.rendered / s.seconds if s.rendered else float("nan"), "steady": s.steady_rate,
            "rendered": s.rendered}
    return out, rate


def object_crop(img: np.ndarray, box: list[float], rng: np.random.Generator) -> np.ndarray:
    """One random square crop (side 1/4..1/2 of the image, at least 1.1× the box's longer side) that holds the
    whole box ``[x, y, w, h]`` (centred on it when it does not fit), resized to SIZE²."""
    h, w = img.shape[:2]
    x, y, bw, bh = box
    lo = min(max(RES // 4, int(np.ceil(1.1 * max(bw, bh)))), min(h, w))
    side = int(rng.integers(lo, max(lo, RES // 2) + 1))
    x0_lo, x0_hi = max(0, int(np.ceil(x + bw)) - side), min(w - side, int(x))
    y0_lo, y0_hi = max(0, int(np.ceil(y + bh)) - side), min(h - side, int(y))
    x0 = int(rng.integers(x0_lo, x0_hi + 1)) if x0_lo <= x0_hi else int(np.clip(x + bw / 2 - side / 2, 0, w - side))
    y0 = int(rng.integers(y0_lo, y0_hi + 1)) if y0_lo <= y0_hi else int(np.clip(y + bh / 2 - side / 2, 0, h - side))
    return np.asarray(Image.fromarray(img).resize((SIZE, SIZE), Image.Resampling.BILINEAR,
                                                  box=(x0, y0, x0 + side, y0 + side)))


def render_crops(folder: Path, n: int, rng: np.random.Generator, object_rng: np.random.Generator
                 ) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    """``n`` random crops per render and ``n`` crops holding its first annotated object (random crops where it
    has none; drawn from ``object_rng``, so the random crops do not depend on them); two group labels per
    crop: the render (protocol ``natural``) and its background source (``photo:<file>``, ``hdrmap:<file>`` or
    the render)."""
    import json

    data = json.loads((folder / "annotations.json").read_text())
    records = {r["file_name"]: r for r in data["images"]}
    boxes: dict[int, list[float]] = {}
    for a in data["annotations"]:
        boxes.setdefault(a["image_id"], a["bbox"])
    crops, on_object, by_render, by_source = [], [], [], []
    for f in sorted((folder / "images").iterdir()):
        rec = records[f.name]
        params = rec["params"]
        bg = params.get("background") or {}
        if bg.get("kind") == "photo":
            source = f"photo:{bg['file']}"
        elif bg.get("kind") == "environment" and (params.get("environment") or {}).get("file"):
            source = f"hdrmap:{params['environment']['file']}"
        else:
            source = f"render:{f.name}"
        img = np.asarray(Image.open(f).convert("RGB"))
        crops += random_crops(img, n, rng)
        box = boxes.get(rec.get("id"))
        on_object += ([object_crop(img, box, object_rng) for _ in range(n)] if box
                      else random_crops(img, n, object_rng))
        by_render += [f"render:{f.name}"] * n
        by_source += [source] * n
    return crops, on_object, by_render, by_source


def cross_validate(x: np.ndarray, y: np.ndarray, groups: list[str], device: torch.device, epochs: int,
                   seed: int, repeats: int = 1) -> tuple[list[float], np.ndarray]:
    """Balanced held-out accuracy of a fresh SmallCNN per fold, 5 grouped folds × ``repeats`` shuffles; and
    per sample, the share of its held-out predictions that said "render"."""
    from sklearn.model_selection import StratifiedGroupKFold

    accs = []
    said_render, held_out = np.zeros(len(y)), np.zeros(len(y))
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0
    yt = torch.from_numpy(y).long()
    splits = [split for r in range(repeats) for split in
              StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed + 1000 * r).split(x, y, groups)]
    for k, (tr, te) in enumerate(splits):
        torch.manual_seed(seed + k)
        mean = xt[tr].mean(dim=(0, 2, 3), keepdim=True)
        std = xt[tr].std(dim=(0, 2, 3), keepdim=True)
        net = SmallCNN(2, in_channels=3, width=16).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(seed + k)
        xtr, ytr = ((xt[tr] - mean) / std), yt[tr]
        # class-balanced loss: the folds keep the classes only roughly balanced
        counts = torch.bincount(ytr, minlength=2).float()
        loss_fn = torch.nn.CrossEntropyLoss(weight=(counts.sum() / (2 * counts.clamp(min=1))).to(device))
        net.train()
        for _ in range(epochs):
            perm = torch.randperm(len(tr), generator=gen)
            for i in range(0, len(tr), 64):
                b = perm[i:i + 64]
                xb = xtr[b]
                if torch.rand(1, generator=gen).item() < 0.5:
                    xb = xb.flip(3)
                opt.zero_grad()
                loss = loss_fn(net(xb.to(device)), ytr[b].to(device))
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            pred = net(((xt[te] - mean) / std).to(device)).argmax(1).cpu()
        said_render[te] += pred.numpy() == 1
        held_out[te] += 1
        yte = yt[te]
        recalls = [float((pred[yte == c] == c).float().mean()) for c in (0, 1) if (yte == c).any()]
        accs.append(float(np.mean(recalls)))
    return accs, said_render / np.maximum(held_out, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=48, help="images rendered per tier")
    ap.add_argument("--crops", type=int, default=8, help="crops per rendered image")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3, help="5-fold cross-validations with fresh shuffles")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    ap.add_argument("--tiers", nargs="+", default=list(TIERS),
                    help="builtin tiers or scene YAML files; the old high tier (high_v1) and the newest (high) "
                         "are compared when both are given")
    ap.add_argument("--empty", action="store_true",
                    help="also judge the newest tier with nothing rendered (no objects, distractors or shadows): "
                         "the share of the judge's accuracy its backgrounds alone explain")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the judge")
    ap.add_argument("--work", type=Path, default=None, help="keep rendered datasets here (resumable)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if builtin_hdri_folder() is None:
        raise SystemExit("no HDR maps: apt-get install -y blender-data")
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="simreal-realism-"))
    work = args.work or tmp
    work.mkdir(parents=True, exist_ok=True)
    hdr_folder = work / "hdr-render-split"  # a stable path: it is part of the new tier's config
    hdr_folder.mkdir(exist_ok=True)
    for f in sorted(builtin_hdri_folder().glob("*.exr")):
        if f.name not in HELD_OUT_HDRS and not (hdr_folder / f.name).exists():
            (hdr_folder / f.name).symlink_to(f)
    render_hdrs = tuple(sorted(p.name for p in hdr_folder.iterdir()))
    ground = tuple(sorted(GROUND_PHOTO_PERSPECTIVES))
    print(f"load before: {os.getloadavg()}; device {device}; background photos (renders): {list(ground)}; "
          f"real photos: {list(REAL_PHOTOS)}; held-out HDRs: {list(HELD_OUT_HDRS)}; render HDRs: "
          f"{list(render_hdrs)}", flush=True)
    n_render = args.count * args.crops
    views = 16
    real, real_groups = real_photo_crops(-(-n_render // 2 // len(REAL_PHOTOS)), rng)
    keep = rng.permutation(len(real))[: n_render // 2]
    real, real_groups = [real[i] for i in keep], [real_groups[i] for i in keep]
    hdr, hdr_groups = hdr_view_crops(views, -(-(n_render - len(real)) // (views * len(HELD_OUT_HDRS))), rng)
    keep = rng.permutation(len(hdr))[: n_render - len(real)]
    real, real_groups = real + [hdr[i] for i in keep], real_groups + [hdr_groups[i] for i in keep]
    # the controls of protocol "controlled": the render backgrounds themselves, as real crops
    ctrl, ctrl_groups = real_photo_crops(-(-n_render // 2 // len(ground)), rng, ground)
    env, env_groups = hdr_view_crops(views, -(-n_render // 2 // (views * len(render_hdrs))), rng, render_hdrs,
                                     whole_map_groups=True)
    ground_crops, ground_groups = ctrl, ctrl_groups  # protocol "literal": every shipped photo is real
    ctrl, ctrl_groups = ctrl + env, ctrl_groups + env_groups
    print(f"real crops: {len(real)} ({len(set(real_groups))} groups); controls (raw render backgrounds): "
          f"{len(ctrl)} ({len(set(ctrl_groups))} groups)", flush=True)
    rates = {}
    results: dict[tuple[str, str], list[float]] = {}
    if args.empty:  # the newest tier with nothing rendered: what its backgrounds alone give away
        import yaml

        empty = yaml.safe_load(tier_path("high").read_text())
        empty.update(name="high_empty", negatives=1.0)
        empty["distractors"]["count"] = [0, 0]
        (work / "high_empty.yaml").write_text(yaml.safe_dump(empty))
        args.tiers.append(str(work / "high_empty.yaml"))
    tiers = [tier_name(t) for t in args.tiers]
    for tier, spec in zip(tiers, args.tiers, strict=True):
        t0 = time.perf_counter()
        folder, rates[tier] = render_tier(spec, args.count, work, hdr_folder, args.seed)
        # each tier's crops come from its own streams: a tier's result does not depend on the others run
        stream = zlib.crc32(tier.encode())
        fake, on_object, by_render, by_source = render_crops(folder, args.crops, np.random.default_rng(
            [args.seed, 2, stream]), np.random.default_rng([args.seed, 1, stream]))
        for protocol, reals, groups, fakes in (
                ("natural", real, real_groups + by_render, fake),
                ("literal", real + ground_crops, real_groups + ground_groups + by_source, fake),
                ("controlled", real + ctrl, real_groups + ctrl_groups + by_source, fake),
                ("object", real + ctrl, real_groups + ctrl_groups + by_source, on_object)):
            if protocol not in args.protocols:
                continue
            fake = fakes
            x = np.stack(reals + fake).astype(np.uint8)
            y = np.array([0] * len(reals) + [1] * len(fake))
            accs, said = cross_validate(x, y, groups, device, args.epochs, args.seed, args.repeats)
            results[tier, protocol] = accs
            kinds = [g.split(":")[0] for g in groups]  # photo / hdr / hdrmap (real); photo / hdrmap / render
            share = {}
            for cls, name in ((0, "real"), (1, "render")):
                for kind in sorted({k for k, c in zip(kinds, y, strict=True) if c == cls}):
                    sel = (y == cls) & (np.array(kinds) == kind)
                    share[f"{name} {kind}"] = f"{100 * said[sel].mean():.0f} % of {int(sel.sum())}"
            print(f"    called 'render', by class and source kind: {share}", flush=True)
            print(f"{tier} [{protocol}]: {len(fake)} render crops vs {len(reals)} real, "
                  f"{len(set(groups))} groups; accuracy {100 * np.mean(accs):.1f} ± {100 * np.std(accs):.1f} % "
                  f"({len(accs)} folds); {time.perf_counter() - t0:.0f}s", flush=True)
    for protocol in args.protocols:
        print(f"\nprotocol {protocol}\n| tier | held-out accuracy real vs render (50 % = indistinguishable) "
              "| distance from 50 % |\n|---|---|---|")
        for tier in tiers:
            m = 100 * np.mean(results[tier, protocol])
            print(f"| {tier} | {m:.1f} ± {100 * np.std(results[tier, protocol]):.1f} % | {abs(m - 50):.1f} points |")
        if {"high_v1", "high"} <= set(tiers):
            old, new = (abs(100 * np.mean(results[t, protocol]) - 50) for t in ("high_v1", "high"))
            print(f"new high tier is {old - new:.1f} points closer to 50 % than the old one (target: >= 15)")
    print("\n| tier | images/s at 256², 2 workers (wall, incl. start-up) | images/s (steady) |")
    print("|---|---|---|")
    for tier in tiers:
        if tier == "low":
            continue
        if rates[tier]["rendered"]:
            print(f"| {tier} | {rates[tier]['wall']:.3f} | {rates[tier]['steady']:.3f} |")
        else:
            print(f"| {tier} | (already rendered in --work; rerun without it to time) | |")
    print(f"\nload after: {os.getloadavg()}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
