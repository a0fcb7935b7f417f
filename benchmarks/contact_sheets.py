"""Regenerate the contact sheets in docs/images/: the first images of each built-in render tier,
raw (no masks or boxes), so anyone can see what each tier looks like.

Each tier renders ``--count`` images at 256² with seed 3 (the images a new user gets from
``simreal render -c TIER -n 8 -r 256 --seed 3``) and ``simreal dataset preview --raw`` lays them out;
the sheet is saved as JPEG (quality 88) to keep the repository small.

Usage: python benchmarks/contact_sheets.py [--count 8] [--tiers low,high_v1,high] [--out docs/images]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

import simreal
from simreal.datasets.contract import Dataset
from simreal.datasets.inspect import preview_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--tiers", default="low,high_v1,high")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "images")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for tier in args.tiers.split(","):
            t0 = time.perf_counter()
            s = simreal.render(tier, Path(tmp) / tier, count=args.count, seed=args.seed, resolution=256, workers=2,
                               progress=False)
            png = Path(tmp) / f"{tier}.png"
            preview_grid(Dataset.open(s.out), png, n=args.count, tile=256, columns=4, raw=True)
            dest = args.out / f"tier_{tier}.jpg"
            Image.open(png).convert("RGB").save(dest, quality=88)
            print(f"{dest}: {s.images} images in {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
