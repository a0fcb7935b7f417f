"""The rare-object table (Figure 2 of the paper on real digits; mean ± std over 3 seeds) with its wall time
and the machine load. Run: ``.venv/bin/python benchmarks/rare_object_table.py [OUT_DIR]``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from simreal.bench.rare_object import RareObjectConfig, format_table, run_benchmark


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/rare_object_bench")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    summary = run_benchmark(RareObjectConfig(), out, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_table(summary))
    print(f"total wall time: {(time.perf_counter() - t0) / 60:.1f} min; load average before {load0[0]:.1f}, "
          f"after {os.getloadavg()[0]:.1f} (1 min); {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
