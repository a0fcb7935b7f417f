"""``simreal bench digits`` and ``simreal bench rare-object``: benchmark tables that double as demos."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Literal

import typer

from simreal.cli.common import device_option, quiet_option

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
    """Synthetic font digits -> sklearn's real 8x8 digits: source only, mixed, DANN, ADDA, refined (CycleGAN, with
    semantic consistency, with SC and DANN, CUT with SC), fine-tune and oracle (mean ± std over seeds), and the
    label-free refiner-selection table (task-space FID vs accuracy)."""
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
                                                         "seeds": list(cfg.seeds), "selection": result["selection"],
                                                         "refiner_selection": result["refiner_selection"]})


class Arch(str, Enum):
    """Architectures of the rare-object benchmark."""

    classifier = "classifier"
    unet = "unet"
    maskrcnn = "maskrcnn"


@bench_app.command("rare-object")
def rare_object_cmd(
    out: Path = typer.Option(Path("runs/rare_object"), "--out", "-o", help="Output folder: data/, results.json, "
                             "rare_object_table.md, log.txt."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of seeds (0..n-1); the real split is drawn per seed."),
    arch: list[Arch] = typer.Option([], "--arch", help="Architectures to run (repeatable; default all three)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes (one thread each)."),
    quick: bool = typer.Option(False, "--quick", help="A few canvases and steps: checks the pipeline, not a result."),
    device: str = device_option(),
    quiet: bool = quiet_option(),
) -> None:
    """The paper's Figure 2 on real handwritten digits: classifier / U-Net / Mask R-CNN x (synthetic + real
    nuisance, + layer-4 DANN, + multi-level DANN, oracle); ROC-AUC of "contains a 7" on real test canvases
    (mean ± std over seeds) and the rare class's AP for Mask R-CNN."""
    from simreal.bench.rare_object import ARCHS, RareObjectConfig, format_table, quick_config, run_benchmark
    from simreal.errors import ConfigError
    from simreal.runtime.device import resolve_device
    from simreal.runtime.io import atomic_write_text
    from simreal.runtime.progress import close_logger, folder_logger

    dev = resolve_device(device)
    if dev.type != "cpu":
        raise ConfigError(f"--device: {dev} asked for, but the benchmark runs on the CPU for now (its trainer does "
                          "not move batches to other devices yet); use --device cpu")
    cfg = quick_config() if quick else RareObjectConfig()
    cfg.seeds = tuple(range(seeds))
    chosen = {a.value for a in arch}
    cfg.archs = tuple(a for a in ARCHS if not chosen or a in chosen)
    cfg.workers = workers
    out.mkdir(parents=True, exist_ok=True)
    log = folder_logger(out, "rare_object")

    def say(line: str) -> None:
        log.info(line)
        if not quiet:
            typer.echo(line, err=True)

    summary = run_benchmark(cfg, out, log=say, progress=not quiet)
    table = format_table(summary)
    typer.echo(table)
    atomic_write_text(out / "rare_object_table.md", "# Rare-object benchmark (real digits)\n\n" + table + "\n")
    log.info("table:\n%s", table)
    close_logger(log)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
