"""``simreal train`` and ``simreal eval``."""

from __future__ import annotations

from pathlib import Path

import typer

from simreal.config import parse_overrides


def train_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Training config YAML (see docs/train.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (created; resumed if it holds the same config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set optim.steps=200."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
) -> None:
    """Train a task model across domains (source only, mixed, DANN, ADDA, fine-tuning)."""
    from simreal.adapt.api import train

    summary = train(config, out, parse_overrides(set_), progress=not no_progress)
    sel = summary["selection"]
    typer.echo(f"run: {out}  selection: {sel['policy']} (step {sel['step']})  report: {out / 'report.md'}")


def eval_cmd(
    run: Path = typer.Option(..., "--run", help="A finished run folder."),
    data: Path = typer.Option(..., "--data", help="Labelled dataset folder or image folder to evaluate on."),
    out: Path | None = typer.Option(None, "--out", help="Report folder (default RUN/eval/<dataset name>)."),
) -> None:
    """Evaluate a run's selected model on a labelled dataset; writes report.md, metrics.json and plots."""
    from simreal.adapt.api import evaluate

    res = evaluate(run, data, out)
    keys = [k for k in ("accuracy", "roc_auc", "roc_auc_ovr_macro", "AP", "precision", "recall", "f1", "AP50", "mAP",
                        "rank1", "miou") if k in res and isinstance(res[k], (int, float))]
    typer.echo("  ".join(f"{k}={res[k]:.4f}" for k in keys) or "done")


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
