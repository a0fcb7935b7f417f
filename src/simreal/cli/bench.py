"""``simreal bench digits``: the digits sim-to-real benchmark table."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from simreal.cli.common import device_option

bench_app = typer.Typer(help="Reproducible benchmarks that double as demos.", no_args_is_help=True)


@bench_app.command("digits")
def digits_cmd(
    out: Path | None = typer.Option(None, "--out", help="Write the table as markdown (and results JSON) here."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of seeds (0..n-1)."),
    steps: int = typer.Option(1200, "--steps", min=1, help="Training steps per model."),
    per_class: int = typer.Option(500, "--per-class", min=10, help="Synthetic training digits per class."),
    k_real: int = typer.Option(5, "--k-real", min=1, help="Labelled real digits per class (mixed, fine-tune)."),
    selection: Literal["last", "source_val"] = typer.Option(
        "last", "--selection", help="Model selection without target labels: last or source_val."),
    device: str = device_option(),
) -> None:
    """Synthetic font digits -> sklearn's real 8x8 digits: source only, mixed, DANN, ADDA, refined,
    fine-tune and oracle (mean ± std over seeds)."""
    from simreal.bench.digits import DigitsConfig, format_table, run_table
    from simreal.runtime.device import resolve_device
    from simreal.runtime.io import atomic_write_json, atomic_write_text

    resolve_device(device)  # an absent device is one line and exit 2 before any data is made
    cfg = DigitsConfig(seeds=tuple(range(seeds)), steps=steps, n_per_class=per_class, k_real=k_real,
                       selection=selection, adda_steps=max(1, steps * 2 // 3), finetune_steps=max(1, steps // 4),
                       device=device)
    result = run_table(cfg, log=lambda s: typer.echo(s, err=True))
    table = format_table(result)
    typer.echo(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "digits_table.md", "# Digits sim-to-real benchmark\n\n" + table + "\n")
        atomic_write_json(out / "digits_results.json", {"rows": result["rows"], "wall_s": result["wall_s"],
                                                         "seeds": list(cfg.seeds), "selection": result["selection"]})


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
