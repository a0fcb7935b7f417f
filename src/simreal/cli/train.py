"""``simreal train`` and ``simreal eval``: thin layers over :func:`simreal.train` and :func:`simreal.evaluate`."""

from __future__ import annotations

from pathlib import Path

import typer

from simreal.cli.common import (
    device_option,
    launch_if_parallel,
    nproc_option,
    precision_option,
    quiet_option,
    set_option,
)
from simreal.config import parse_overrides

SUMMARY_KEYS = ("accuracy", "roc_auc", "roc_auc_ovr_macro", "average_precision", "precision", "recall", "f1", "AP50",
                "mAP", "rank1", "miou")


def train_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Training config YAML (see docs/train.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (created; resumed if it holds the same config)."),
    set_: list[str] = set_option(),
    device: str | None = device_option(None),
    precision: str | None = precision_option(),
    nproc: int = nproc_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Train a task model across domains (source only, mixed, DANN, ADDA, fine-tuning).

    Rerunning the same command resumes from the last checkpoint, also on another device or with another
    --nproc. Several machines: torchrun --nnodes ... -m simreal train ... (see docs/devices.md)."""
    import simreal

    launch_if_parallel(nproc)
    res = simreal.train(config, out, overrides=parse_overrides(set_), progress=not quiet, device=device,
                        precision=precision)
    if not _is_main():  # one line per job
        return
    sel = res.selection
    typer.echo(f"run: {res.run}  selection: {sel['policy']} (step {sel['step']})  report: {res.report}")


def eval_cmd(
    run: Path = typer.Option(..., "--run", help="A finished training run folder."),
    data: Path = typer.Option(..., "--data", help="Labelled dataset folder or image folder to evaluate on."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default RUN/eval/<dataset name>)."),
    device: str = device_option(),
) -> None:
    """Evaluate a run's selected model on a labelled dataset; writes report.md, metrics.json and plots."""
    import simreal

    res = simreal.evaluate(run, data, out, device=device)
    m = res.metrics
    keys = [k for k in SUMMARY_KEYS if isinstance(m.get(k), (int, float))]
    typer.echo("  ".join(f"{k}={m[k]:.4f}" for k in keys) or "done")
    typer.echo(f"report: {res.report}")


def _is_main() -> bool:
    from simreal.runtime.distributed import from_env

    return from_env().is_main


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
