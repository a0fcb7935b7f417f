"""Digits sim-to-real table (mean ± std over 3 seeds) with wall time. Run:
``.venv/bin/python benchmarks/digits_table.py [--out DIR]``."""

from __future__ import annotations

import sys
import time

from simreal.bench.digits import DigitsConfig, format_table, run_table


def main() -> None:
    t0 = time.perf_counter()
    result = run_table(DigitsConfig(), log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_table(result))
    print(f"total wall time (incl. rendering): {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
