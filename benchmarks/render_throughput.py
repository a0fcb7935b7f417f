"""Render throughput: images/s (wall clock including worker start-up, and steady state from the
first finished image on) for both fidelity tiers at 128² and 256², annotations and writing
included, with 1 and 2 workers, and the fraction of per-image time spent outside Mitsuba's
``render`` call (and outside Mitsuba altogether, i.e. also excluding scene construction).

People (``--people``, on by default): re-id crops at 128×256 (one task per character: built once, its
10 views rendered; the table gives the character build time as a share of rendering its views, target
≤ 25 %), the same crops in front of HDR environment maps (``envmap`` backgrounds: image-based light and
two shadow-catcher passes per view; needs ``builtin:hdri``), and ceiling-fisheye scenes at 512² (1-9
people each) with the example config's pools (cold caches: rooms and posed people are built as they
are first met) and with small pools (2 rooms, 8 identities: warm caches after the first images), 1 and
2 workers.

Mitsuba variants: ``--variants scalar_rgb,llvm_ad_rgb,cuda_ad_rgb`` (``cuda_ad_rgb`` needs a CUDA GPU; a variant
this machine lacks is reported as not available); the speed-up column is against 1 worker of the same variant.

Usage: python benchmarks/render_throughput.py [--low-count 80] [--high-count 8] [--tiers low,high]
                                              [--variants scalar_rgb] [--people-chars 3] [--scene-count 10]
                                              [--no-people] [--people-rows reid,reid-envmap,fisheye,fisheye-small]
Prints markdown tables. Timings are wall-clock on this machine; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from simreal.config import load_config
from simreal.errors import SimrealError
from simreal.render.api import tier_path
from simreal.render.job import render_dataset
from simreal.render.spec import SceneConfig


def run(tier: str, res: int, workers: int, count: int, root: Path, variant: str = "scalar_rgb") -> dict[str, float]:
    cfg = load_config(SceneConfig, tier_path(tier), {"count": count, "resolution": [res, res], "seed": 1,
                                                     "render.variant": variant})
    out = root / f"{tier}-{res}-{workers}-{variant}"
    s = render_dataset(cfg, out, workers=workers, quiet=True)
    shutil.rmtree(out)
    total = s.render_seconds + s.other_seconds
    return {
        "img_s": s.rendered / s.seconds,
        "steady": s.steady_rate,
        "outside_render": s.other_seconds / total,
        "outside_mitsuba": (s.other_seconds - s.scene_seconds) / total,
        "seconds": s.seconds,
    }


def run_people(cfg: dict[str, Any], workers: int, root: Path, tag: str) -> dict[str, float]:
    """Render a people config (type people or people_scene); rates and the build share of re-id tasks."""
    from simreal.render.api import load_render_config
    from simreal.render.job import MANIFEST
    from simreal.runtime.manifest import DONE, Manifest

    out = root / f"{tag}-{workers}"
    s = render_dataset(load_render_config(cfg), out, workers=workers, quiet=True)
    m = Manifest(out / MANIFEST)
    try:
        timings = [r["timings"] for r in m.rows(DONE)]
    finally:
        m.close()
    shutil.rmtree(out)
    shares = [t["build"] / max(t["total"] - t["build"], 1e-9) for t in timings if "build" in t]
    per_task = s.images / max(s.rendered, 1)  # a re-id task is one character and all its views
    return {"img_s": s.images / s.seconds, "steady": s.steady_rate * per_task, "seconds": s.seconds,
            "build_share": float(np.median(shares)) if shares else float("nan"),
            "build_share_max": max(shares) if shares else float("nan"),
            "mitsuba": s.render_seconds / max(s.render_seconds + s.other_seconds, 1e-9)}


PEOPLE_ROWS = ("reid", "reid-envmap", "fisheye", "fisheye-small")


def people_tables(chars: int, scenes: int, root: Path, rows: tuple[str, ...] = PEOPLE_ROWS) -> None:
    crop = {"type": "people", "seed": 1, "count": chars, "views": 10, "resolution": [128, 256],
            "background": {"weights": {"plain": 1, "room": 1}}}
    envmap = dict(crop, background={"weights": {"envmap": 1}, "hdr_folder": "builtin:hdri"})
    example = Path(__file__).resolve().parents[1] / "configs" / "render" / "people_fisheye.yaml"
    import yaml

    scene = yaml.safe_load(example.read_text())
    scene.update(count=scenes, seed=1)
    small = dict(scene, background={"rooms": {"count": 2, "spp": 16}},
                 people=dict(scene["people"], identities=8, pose_variants=1))
    print("\n| people | images | workers | images/s (wall) | images/s (steady) | steady speed-up | "
          "in Mitsuba render() | character build / its views, median (max: a worker's first, loading anny) | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, label, cfg, n in (("reid", "re-id crops 128×256 (plain and room backgrounds)", crop, chars * 10),
                               ("reid-envmap", "re-id crops 128×256 (envmap backgrounds)", envmap, chars * 10),
                               ("fisheye", "fisheye scenes 512², example pools (cold caches)", scene, scenes),
                               ("fisheye-small", "fisheye scenes 512², 2 rooms, 8 identities (warm caches)", small,
                                scenes)):
        if key not in rows:
            continue
        base = None
        for workers in (1, 2):
            r = run_people(cfg, workers, root, key + str(n))
            base = base or r["steady"]
            share = "-" if r["build_share"] != r["build_share"] else \
                f"{100 * r['build_share']:.1f}% (max {100 * r['build_share_max']:.1f}%)"
            print(f"| {label} | {n} | {workers} | {r['img_s']:.2f} | {r['steady']:.2f} | "
                  f"{r['steady'] / base:.2f}× | {100 * r['mitsuba']:.0f}% | {share} | {r['seconds']:.1f} |",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--low-count", type=int, default=80)
    ap.add_argument("--high-count", type=int, default=8)
    ap.add_argument("--tiers", default="low,high", help="comma-separated tiers; empty: none")
    ap.add_argument("--resolutions", default="128,256")
    ap.add_argument("--variants", default="scalar_rgb")
    ap.add_argument("--people-chars", type=int, default=3, help="re-id characters (10 views each)")
    ap.add_argument("--scene-count", type=int, default=10, help="fisheye scene images per row")
    ap.add_argument("--no-people", action="store_true")
    ap.add_argument("--people-rows", default=",".join(PEOPLE_ROWS), help="people rows to measure")
    args = ap.parse_args()
    people_rows = tuple(r.strip() for r in args.people_rows.split(",") if r.strip())
    if set(people_rows) - set(PEOPLE_ROWS):
        ap.error(f"--people-rows: expected a comma-separated subset of {','.join(PEOPLE_ROWS)}")
    print("| tier | variant | res | workers | images | images/s (wall, incl. start-up) | images/s (steady) | "
          "steady speed-up vs 1 worker | outside render() | outside Mitsuba | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for tier in [t for t in args.tiers.split(",") if t]:
            count = args.low_count if tier == "low" else args.high_count
            for variant, res in ((v, int(r)) for v in args.variants.split(",") for r in args.resolutions.split(",")):
                base = None
                for workers in (1, 2):
                    try:
                        r = run(tier, res, workers, count, Path(tmp), variant)
                    except SimrealError as exc:  # e.g. cuda_ad_rgb without a GPU
                        print(f"| {tier} | {variant} | {res}² | {workers} | not available: {exc} |||||||")
                        break
                    base = base or r["steady"]
                    print(f"| {tier} | {variant} | {res}² | {workers} | {count} | {r['img_s']:.2f} | "
                          f"{r['steady']:.2f} | "
                          f"{r['steady'] / base:.2f}× | "
                          f"{100 * r['outside_render']:.0f}% | {100 * r['outside_mitsuba']:.0f}% | "
                          f"{r['seconds']:.1f} |", flush=True)
        if not args.no_people:
            people_tables(args.people_chars, args.scene_count, Path(tmp), people_rows)
        print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
