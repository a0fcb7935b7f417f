"""``simreal render``: a thin layer over :func:`simreal.render`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import typer

from simreal.cli.common import quiet_option, set_option
from simreal.config import parse_overrides
from simreal.render.api import Executor

Variant = Literal["scalar_rgb", "llvm_ad_rgb", "cuda_ad_rgb"]


def render(
    config: str = typer.Option("low", "--config", "-c",
                               help="Scene config YAML, or a built-in tier: low, high or high_v1 (the old high)."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (or resume)."),
    count: int | None = typer.Option(None, "--count", "-n", min=1, help="Number of samples (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", help="Root seed (overrides the config)."),
    resolution: int | None = typer.Option(None, "--resolution", "-r", min=8, help="Square resolution in pixels."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-w", min=1,
                                help="Parallel workers (one core each)."),
    executor: Executor = typer.Option("local", "--executor", help="local (process pool) or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (default: local Ray)."),
    crop: bool = typer.Option(False, "--crop", help="Write object-centred crops instead of full images."),
    variant: Variant | None = typer.Option(
        None, "--variant", help="Mitsuba variant (overrides render.variant): scalar_rgb (CPU reference), "
        "llvm_ad_rgb (JIT, vectorised CPU) or cuda_ad_rgb (GPU). Labels are exact in every variant; image bytes "
        "differ between variants."),
    gpus_per_task: float | None = typer.Option(
        None, "--gpus-per-task", min=0.0, help="Ray, cuda_ad_rgb: GPUs each render task asks Ray for (default 1; "
        "0.25 puts 4 tasks on a GPU)."),
    set_: list[str] = set_option("camera.fov=[40,40]"),
    quiet: bool = quiet_option(),
) -> None:
    """Render an annotated synthetic dataset (COCO + 16-bit instance masks) with domain randomization.

    Every image is reproducible from (seed, index) and the output is byte-identical for any number of workers.
    Re-running the same command resumes: only missing images are rendered.
    """
    import simreal

    s = simreal.render(config, out, count=count, seed=seed, resolution=resolution, crop=crop,
                       overrides=parse_overrides(set_), workers=workers, executor=executor, address=address,
                       progress=not quiet, command=" ".join(["simreal", *sys.argv[1:]]), variant=variant,
                       gpus_per_task=gpus_per_task)
    typer.echo(
        f"{s.out}: {s.images} images, {s.annotations} annotations "
        f"({s.rendered} rendered, {s.skipped} already done, {s.failed} failed) in {s.seconds:.1f}s"
    )
    if s.failed:
        typer.echo(f"simreal: {s.failed} samples failed (first: {s.first_error}); see {s.out / 'render.log'}; "
                   "run the same command again to retry them", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("render")(render)
