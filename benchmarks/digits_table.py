"""Digits sim-to-real table (mean ± std over seeds) with the refined rows, the label-free refiner-selection
table (task-space FID vs accuracy, Spearman ρ), wall time, CPU time and machine load. Run:

    .venv/bin/python benchmarks/digits_table.py                       # the full table, 3 seeds, one process
    nice -n 10 .venv/bin/python benchmarks/digits_table.py --workers 3 --refine-checkpoints 300 \\
        --rows "source only,DANN,refined (CycleGAN),refined + SC,refined + SC + DANN,refined (CUT) + SC"

``--workers`` runs the seeds in parallel processes (same numbers); ``--json`` writes the raw results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import replace

from simreal.bench.digits import ROWS, DigitsConfig, format_table, run_table


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1 (fresh "
                    "seeds to confirm settings chosen on others)")
    ap.add_argument("--workers", type=int, default=1, help="seeds in parallel processes")
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated row names")
    ap.add_argument("--steps", type=int, default=DigitsConfig.steps)
    ap.add_argument("--refine-steps", type=int, default=DigitsConfig.refine_steps)
    ap.add_argument("--adapted-refine-steps", type=int, default=DigitsConfig.adapted_refine_steps)
    ap.add_argument("--refine-checkpoints", default="", help="comma-separated extra refiner steps to score")
    ap.add_argument("--json", default=None, help="write the raw results here")
    a = ap.parse_args()
    rows = tuple(r.strip() for r in a.rows.split(",") if r.strip())
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        sys.exit(f"unknown rows {unknown}; rows are {list(ROWS)}")
    cfg = replace(DigitsConfig(), seeds=tuple(range(a.first_seed, a.first_seed + a.seeds)), rows=rows, steps=a.steps,
                  refine_steps=a.refine_steps, adapted_refine_steps=a.adapted_refine_steps,
                  refine_checkpoints=tuple(int(v) for v in a.refine_checkpoints.split(",") if v.strip()))
    load0, t0, c0 = _load(), time.perf_counter(), _cpu_s()
    result = run_table(cfg, log=lambda s: print(s, file=sys.stderr, flush=True), workers=a.workers)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    print(format_table(result))
    print(f"\ntotal wall time (incl. rendering): {wall:.0f} s with {a.workers} worker(s); CPU time {cpu:.0f} s; "
          f"load average (1/5/15 min) at start {load0}, at end {_load()}; {os.cpu_count()} CPUs")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": result["rows"], "refiner_selection": result["refiner_selection"], "wall_s": wall,
                       "cpu_s": cpu, "seeds": list(cfg.seeds), "steps": cfg.steps, "refine_steps": cfg.refine_steps,
                       "refine_checkpoints": list(cfg.refine_checkpoints), "workers": a.workers}, f, indent=1)


if __name__ == "__main__":
    main()
