"""The rare-object table (Figure 2 of the paper on real digits; mean ± std over 3 seeds) with its wall time
and the machine load. Run: ``.venv/bin/python benchmarks/rare_object_table.py [OUT_DIR]``.

``--seeds N`` and ``--steps-scale F`` (training steps of every architecture x F) give a reduced budget on a
busy machine; the table then says so in its header line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from simreal.bench.rare_object import ARCHS, RareObjectConfig, format_table, run_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", nargs="?", default="runs/rare_object_bench")
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="training steps x this factor")
    ap.add_argument("--arch", action="append", choices=ARCHS, help="architectures (repeatable; default all)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cfg = RareObjectConfig(seeds=tuple(range(args.seeds)), workers=args.workers,
                           archs=tuple(a for a in ARCHS if not args.arch or a in args.arch))
    cfg.steps = {k: max(1, round(v * args.steps_scale)) for k, v in cfg.steps.items()}
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    summary = run_benchmark(cfg, Path(args.out), log=lambda s: print(s, file=sys.stderr, flush=True))
    print(f"budget: {args.seeds} seed(s), steps {cfg.steps} (x{args.steps_scale} of the default), "
          f"{cfg.workers} workers")
    print(format_table(summary))
    print(f"total wall time: {(time.perf_counter() - t0) / 60:.1f} min; load average before {load0[0]:.1f}, "
          f"after {os.getloadavg()[0]:.1f} (1 min); {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
