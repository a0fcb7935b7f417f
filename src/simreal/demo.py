"""The whole loop on embedded defaults (``simreal demo``, ``make demo``).

render (low and high tiers) -> refine the low renders toward real photos -> train a segmenter with
3-domain adaptation (refined low, high, unlabelled real) -> evaluate on held-out renders and on real
photos the model never saw -> triage generated videos -> print the viewer command and a summary.

The real images are the photographs shipped inside scikit-learn, scikit-image and matplotlib, split
by photo into two disjoint sets: set A (backgrounds of the low renders, the unlabelled real domain
for refinement and adaptation) and set B (held out: real negatives for evaluation, and the
backgrounds of the triage videos). No real photo contains the object, so the real-photo figure is a
false-positive rate; the videos show held-out *rendered* canisters composited on set-B photos, a
check that the pipeline finds the object, not a claim about real canisters.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Photos held out from every training step (colour scenes; none is a ground photo of the high tier).
HELD_OUT = ("sklearn-china.jpg", "sklearn-flower.jpg", "skimage-rocket.jpg", "skimage-chelsea.png",
            "matplotlib-grace_hopper.jpg", "skimage-astronaut.png")
# Photos that are not scenes (logos, text, microscopy of a page) are left out of both sets.
NOT_SCENES = ("matplotlib-logo2.png", "skimage-logo.png", "skimage-text.png", "skimage-page.png")


@dataclass(frozen=True)
class DemoSizes:
    """How much work each step does (``full``: about 10 minutes on 2 cores; ``tiny``: the test's)."""

    resolution: int = 64
    low: int = 240
    high: int = 80
    high_test: int = 40
    refine_iterations: int = 160
    train_steps: int = 250
    batch_per_domain: int = 8
    videos: int = 4
    video_seconds: float = 12.0
    triage_fps: float = 2.0

    @classmethod
    def preset(cls, name: str) -> DemoSizes:
        if name == "full":
            return cls()
        if name == "tiny":
            return cls(low=16, high=8, high_test=8, refine_iterations=6, train_steps=12, batch_per_domain=4,
                       videos=2, video_seconds=4.0, triage_fps=1.0)
        from simreal.errors import ConfigError

        raise ConfigError(f"--size: expected full or tiny, got {name!r}")


@dataclass
class DemoResult:
    """Where everything is, the figures, and the pictures to open."""

    out: Path
    figures: dict[str, Any] = field(default_factory=dict)
    pictures: dict[str, Path] = field(default_factory=dict)
    view_command: str = ""
    seconds: float = 0.0


def photo_sets() -> tuple[list[Path], list[Path]]:
    """(set A, set B): the builtin photos for training and the held-out ones, disjoint."""
    from simreal.render.library import builtin_photos

    photos = sorted(p for p in builtin_photos().iterdir() if p.name not in NOT_SCENES)
    held = [p for p in photos if p.name in HELD_OUT]
    return [p for p in photos if p.name not in HELD_OUT], held


def _rgb(path: Path, short_side: int) -> Image.Image:
    img = Image.open(path).convert("RGB")
    s = short_side / min(img.size)
    return img.resize((max(short_side, round(img.width * s)), max(short_side, round(img.height * s))),
                      Image.Resampling.LANCZOS)


def photo_crops(photos: list[Path], out: Path, size: int, name: str, categories: list[str]) -> Path:
    """A real dataset of non-overlapping ``size`` crops of each photo (shorter side scaled to 2 x size),
    without objects: empty masks, label 0. Written once; an existing one is kept."""
    from simreal.datasets.contract import DATASET_JSON, DatasetWriter
    from simreal.datasets.imageio import encode_mask

    if (out / DATASET_JSON).is_file():
        return out
    w = DatasetWriter(out, name, "real", [{"id": i + 1, "name": c} for i, c in enumerate(categories)],
                      provenance={"command": "simreal demo", "photos": [p.name for p in photos]})
    images = []
    empty = encode_mask(np.zeros((size, size), np.uint16))
    for p in photos:
        img = _rgb(p, 2 * size)
        for y in range(0, img.height - size + 1, size):
            for x in range(0, img.width - size + 1, size):
                buf = io.BytesIO()
                img.crop((x, y, x + size, y + size)).save(buf, "PNG")
                stem = f"{p.stem}_{x}_{y}"
                fn = w.write_image(f"{stem}.png", buf.getvalue())
                mask = w.write_file(f"masks/{stem}.png", empty)
                images.append({"id": len(images) + 1, "file_name": fn, "mask_file": mask, "width": size,
                               "height": size, "domain": "real", "label": 0, "photo": p.name})
    w.finalize(images, [])
    return out


def _cutouts(ds_path: Path, n: int) -> list[np.ndarray]:
    """RGBA cut-outs of the largest visible object of the first ``n`` images that have one."""
    from simreal.datasets.coco import extras
    from simreal.datasets.contract import Dataset

    ds = Dataset.open(ds_path)
    out = []
    for rec in ds.images:
        anns = [a for a in ds.anns(rec) if not extras(a).get("ignore")]
        mask = ds.load_mask(rec)
        if not anns or mask is None:
            continue
        a = max(anns, key=lambda a: a["area"])
        alpha = (mask == extras(a)["instance_id"]).astype(np.uint8) * 255
        x, y, w, h = (int(round(v)) for v in a["bbox"])
        if w < 6 or h < 6:
            continue
        rgb = ds.load_image(rec)[..., :3]
        out.append(np.dstack([rgb, alpha])[y:y + h, x:x + w])
        if len(out) == n:
            break
    return out


def make_videos(folder: Path, backgrounds: list[Path], cutouts: list[np.ndarray], n: int, seconds: float,
                seed: int = 0, fps: int = 8) -> dict[str, list[tuple[float, float]]]:
    """``n`` videos (160 x 120) panning over held-out photos; every other one shows a rendered object
    moving across during one span. Returns each file's spans (seconds) where the object is visible."""
    from simreal.triage.encode import encode_video

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    spans: dict[str, list[tuple[float, float]]] = {}
    W, H = 160, 120
    for v in range(n):
        bg = np.asarray(_rgb(backgrounds[v % len(backgrounds)], 2 * H))
        positive = v % 2 == 0 and bool(cutouts)
        a = float(rng.uniform(0.2, 0.4)) * seconds
        span = (a, a + seconds / 3) if positive else None
        obj = cutouts[v % len(cutouts)] if positive else None
        if obj is not None:
            scale = 48 / max(obj.shape[:2])
            obj = np.asarray(Image.fromarray(obj).resize((max(1, round(obj.shape[1] * scale)),
                                                          max(1, round(obj.shape[0] * scale)))))
        name = f"{'pos' if positive else 'neg'}_{v:02d}.mp4"

        def frames(bg: np.ndarray = bg, obj: np.ndarray | None = obj,
                   span: tuple[float, float] | None = span) -> Any:
            for i in range(int(seconds * fps)):
                t = i / fps
                x0 = int((bg.shape[1] - W) * t / seconds)
                frame = bg[(bg.shape[0] - H) // 2:(bg.shape[0] - H) // 2 + H, x0:x0 + W].astype(np.float32)
                if obj is not None and span is not None and span[0] <= t < span[1]:
                    u = (t - span[0]) / (span[1] - span[0])
                    oh, ow = obj.shape[:2]
                    x, y = int(8 + u * (W - ow - 16)), (H - oh) // 2
                    al = obj[..., 3:4] / 255.0
                    frame[y:y + oh, x:x + ow] = al * obj[..., :3] + (1 - al) * frame[y:y + oh, x:x + ow]
                yield frame.clip(0, 255).astype(np.uint8)

        encode_video(folder / name, frames(), fps, gop=fps * 2)
        spans[name] = [span] if span else []
    return spans


def run_demo(out: str | Path = "demo_out", size: str | DemoSizes = "full", *, workers: int | None = None,
             progress: bool = True, echo: Callable[[str], None] = print, device: str | None = None) -> DemoResult:
    """Run the whole loop into ``out`` (resuming what is already there) and return the figures; the networks
    run on ``device`` (None: auto)."""
    import simreal
    import simreal.triage
    from simreal.runtime.device import resolve_device

    resolve_device(device)  # an absent device fails before anything is rendered
    from simreal.datasets.contract import Dataset
    from simreal.datasets.inspect import preview_grid

    sz = DemoSizes.preset(size) if isinstance(size, str) else size
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = DemoResult(out=out)
    fig, pics = res.figures, res.pictures
    set_a, set_b = photo_sets()
    r = sz.resolution
    step_t = [time.perf_counter()]

    def done(text: str) -> None:
        now = time.perf_counter()
        echo(f"      {text} [{now - step_t[0]:.0f} s]")
        step_t[0] = now

    echo(f"[1/6] real photos: {len(set_a)} for training (unlabelled), {len(set_b)} held out")
    real_a = photo_crops(set_a, out / "real_train", 2 * r, "real-train", ["canister"])
    real_b = photo_crops(set_b, out / "real_heldout", 2 * r, "real-heldout", ["canister"])
    fig["real_train_images"], fig["real_heldout_images"] = len(Dataset.open(real_a)), len(Dataset.open(real_b))
    done(f"{real_a} ({fig['real_train_images']} crops), {real_b} ({fig['real_heldout_images']} crops)")

    echo("[2/6] render: low tier (photo backgrounds from set A) and high tier (HDR light, shadows on photos)")
    low_folder = out / "photos_a"
    low_folder.mkdir(exist_ok=True)
    for p in set_a:
        link = low_folder / p.name
        if not link.exists():
            link.symlink_to(p.resolve())
    kw = {"resolution": r, "workers": workers, "progress": progress, "command": "simreal demo"}
    scene = {"negatives": 0.3}
    low = simreal.render("low", out / "render_low", count=sz.low, seed=1,
                         overrides={**scene, "background.photo_folder": str(low_folder)}, **kw)
    high = simreal.render("high", out / "render_high", count=sz.high, seed=2, overrides=scene, **kw)
    test = simreal.render("high", out / "render_high_test", count=sz.high_test, seed=3, overrides=scene, **kw)
    for key, s in (("low", low), ("high", high), ("high_test", test)):
        fig[f"render_{key}_img_per_s"] = round(s.steady_rate, 2)
        pics[f"render_{key}"] = preview_grid(Dataset.open(s.out), out / f"preview_{key}.png", n=16)
    done(f"{low.out} ({low.rendered} new), {high.out} ({high.rendered} new), {test.out}; previews "
         f"{pics['render_low']}, {pics['render_high']}")

    echo("[3/6] refine: CycleGAN from the low renders toward the real photos of set A")
    iters = max(1, sz.refine_iterations // 8)
    rcfg = {"net": {"ngf": 16, "ndf": 16, "n_blocks": 3, "n_layers_d": 2, "skip": True},
            "data": {"crop_size": r, "load_size": r},
            "train": {"epochs": 4, "epochs_decay": 4, "iterations_per_epoch": iters, "batch_size": 4,
                      "num_samples": 4, "checkpoint_every": 4, "lr": 5e-4,
                      "threads": 1}}  # tiny convs: one thread is faster, and far faster on a busy machine
    ref = simreal.refine.train(low.out, real_a, out / "refine_run", rcfg, progress=progress, device=device)
    refined = simreal.refine.apply(ref.run, low.out, out / "render_low_refined", progress=progress,
                                   device=device or "auto")
    pics["refine_samples"] = ref.run / "samples"
    pics["refined"] = preview_grid(Dataset.open(refined.out), out / "preview_low_refined.png", n=16)
    done(f"run {ref.run}, refined dataset {refined.out}, preview {pics['refined']}")

    echo("[4/6] train: U-Net segmenter, DANN over three domains (refined low, high, unlabelled real)")
    tcfg = {
        "task": "segment", "seed": 0,
        "data": {"image_size": [r, r], "channels": 3, "domains": [
            {"path": str(refined.out), "name": "low_refined", "role": "source"},
            {"path": str(high.out), "name": "high", "role": "source"},
            {"path": str(real_a), "name": "real", "role": "target", "labelled": False}]},
        "model": {"arch": "unet_small", "width": 16},
        "method": {"name": "dann", "alpha": 0.1},
        "optim": {"steps": sz.train_steps, "batch_per_domain": sz.batch_per_domain, "lr": 2e-3},
        "selection": {"policy": "source_val", "eval_every": max(1, sz.train_steps // 4)},
        "checkpoint_every": max(1, sz.train_steps // 4),
    }
    run = simreal.train(tcfg, out / "train_run", progress=progress, device=device)
    done(f"run {run.run} (model selection: step {run.selection.get('step')}, {run.selection.get('policy')})")

    echo("[5/6] evaluate: held-out high renders, and real photos the model never saw")
    ev = simreal.evaluate(run.run, test.out, out=out / "eval_high_test", device=device or "auto")
    ev_real = simreal.evaluate(run.run, real_b, out=out / "eval_real_heldout", device=device or "auto")
    m = ev.metrics
    fig["canister_iou_high_test"] = m["per_class_iou"].get("canister")
    fig["image_roc_auc_high_test"] = m.get("image_roc_auc_macro")
    fig["false_positive_pixels_real"] = 1.0 - float(ev_real.metrics["pixel_accuracy"])
    pics["eval_report"] = ev.report
    done(f"{ev.out}: canister IoU {_f(fig['canister_iou_high_test'])}, image ROC-AUC "
         f"{_f(fig['image_roc_auc_high_test'])}; {ev_real.out}: false-positive pixels "
         f"{100 * fig['false_positive_pixels_real']:.2f} %")

    echo("[6/6] triage: videos panning over held-out photos, scored by the trained model")
    videos = out / "videos"
    spans_file = videos / "spans.json"
    if spans_file.is_file():
        spans = json.loads(spans_file.read_text())
    else:
        spans = make_videos(videos, set_b, _cutouts(test.out, sz.videos), sz.videos, sz.video_seconds)
        spans_file.write_text(json.dumps(spans, indent=1))
    tri = simreal.triage.run({
        "folder": str(out / "triage"),
        "select": {"name": "Local", "config": {"paths": [str(videos)], "extensions": [".mp4"]}},
        "analyse": [{"name": "Frames", "config": {"fps": sz.triage_fps}},
                    {"name": "Score", "config": {"models": [{"run": str(run.run), "name": "canister"}]}}],
    }, workers=workers, progress=progress, device=device)
    ranking = simreal.triage.rank_folder(tri.folder, by="max")
    order = [row["title"] or row["source"] for row in ranking["elements"]]
    names = [Path(str(o)).name for o in order]
    positives = sorted(k for k, v in spans.items() if v)
    fig["triage_order"] = names
    fig["triage_positives_first"] = sorted(names[:len(positives)]) == positives
    res.view_command = tri.view_command
    done(f"{tri.folder}: {tri.frames_scored} frames scored; ranked by max score: {', '.join(names)}")

    res.seconds = time.perf_counter() - t0
    fig["seconds"] = round(res.seconds, 1)
    summary = {"figures": fig, "pictures": {k: str(v) for k, v in pics.items()}, "view": res.view_command}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    echo("\nsummary (" + f"{res.seconds / 60:.1f} min, {out / 'summary.json'}):")
    echo(f"  held-out high renders: canister IoU {_f(fig['canister_iou_high_test'])}, image ROC-AUC "
         f"{_f(fig['image_roc_auc_high_test'])}")
    echo(f"  held-out real photos (no canister): {100 * fig['false_positive_pixels_real']:.2f} % pixels flagged")
    echo(f"  triage: videos with the object ranked first: {'yes' if fig['triage_positives_first'] else 'no'} "
         f"({', '.join(names)})")
    echo("  open: " + ", ".join(str(p) for p in pics.values()))
    echo(f"  review the hits: {res.view_command}")
    return res


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
