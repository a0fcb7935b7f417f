"""Render throughput: images/s (wall clock including worker start-up, and steady state from the
first finished image on) for both fidelity tiers at 128² and 256², annotations and writing
included, with 1 and 2 workers, and the fraction of per-image time spent outside Mitsuba's
``render`` call (and outside Mitsuba altogether, i.e. also excluding scene construction).

Mitsuba variants: ``--variants scalar_rgb,llvm_ad_rgb,cuda_ad_rgb`` (``cuda_ad_rgb`` needs a CUDA GPU; a variant
this machine lacks is reported as not available); the speed-up column is against 1 worker of the same variant.

Usage: python benchmarks/render_throughput.py [--low-count 80] [--high-count 8] [--variants scalar_rgb]
Prints a markdown table. Timings are wall-clock on this machine; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--low-count", type=int, default=80)
    ap.add_argument("--high-count", type=int, default=8)
    ap.add_argument("--tiers", default="low,high")
    ap.add_argument("--resolutions", default="128,256")
    ap.add_argument("--variants", default="scalar_rgb")
    args = ap.parse_args()
    print("| tier | variant | res | workers | images | images/s (wall, incl. start-up) | images/s (steady) | "
          "steady speed-up vs 1 worker | outside render() | outside Mitsuba | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for tier in args.tiers.split(","):
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


if __name__ == "__main__":
    main()
