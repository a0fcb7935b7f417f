"""``simreal refine``: thin layers over ``simreal.refine`` (train), ``simreal.refine.apply`` and
``simreal.refine.evaluate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

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

refine_app = typer.Typer(
    name="refine", help="Sim-to-real refinement (CycleGAN family, AGGAN, CUT).", no_args_is_help=True
)


@refine_app.command("train")
def train_cmd(
    source: Path = typer.Option(..., "--source", help="Synthetic dataset (domain A)."),
    target: Path = typer.Option(..., "--target", help="Real images: dataset folder or image folder (domain B)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (or resume)."),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="Refiner config YAML (default: the run's own config when resuming, "
                                            "else the CycleGAN defaults)."),
    set_: list[str] = set_option("train.epochs=5"),
    device: str | None = device_option(None),
    precision: str | None = precision_option(),
    nproc: int = nproc_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Train a refiner; rerunning the same command resumes from the last checkpoint (also on another device
    or with another --nproc)."""
    import simreal
    from simreal.runtime.distributed import from_env

    launch_if_parallel(nproc)
    res = simreal.refine(source, target, out, config, overrides=parse_overrides(set_), progress=not quiet,
                         device=device, precision=precision)
    if not from_env().is_main:  # one line per job
        return
    typer.echo(f"{res.run}: {res.epochs} epochs ({res.iterations} iterations); checkpoint {res.checkpoint}")


@refine_app.command("apply")
def apply_cmd(
    run: Path = typer.Option(..., "--run", help="Refiner run folder."),
    source: Path = typer.Option(..., "--source", help="Dataset (or image folder) to refine."),
    out: Path = typer.Option(..., "--out", "-o", help="Refined dataset folder to write (or resume)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images (or crops) per forward pass."),
    crops: bool | None = typer.Option(
        None, "--crops/--whole", help="Crop-refine-reinsert objects, or refine whole images (default: run config)."
    ),
    device: str = device_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Refine every image of a dataset; annotations and masks are copied unchanged (domain "refined")."""
    import simreal

    res = simreal.refine.apply(run, source, out, batch_size=batch_size, crops=crops, progress=not quiet,
                               command=" ".join(["simreal", *sys.argv[1:]]), device=device)
    typer.echo(f"{res.out}: {res.images} refined images, {res.annotations} annotations")


@refine_app.command("eval")
def eval_cmd(
    run: Path = typer.Option(..., "--run", help="Refiner run folder."),
    extractor: Literal["inception", "vgg16", "pixels"] = typer.Option(
        "inception", "--extractor", help="Feature space: inception (pytorch-fid), vgg16 or pixels."),
    weights: Path | None = typer.Option(None, "--weights", help="Local weights file of the extractor."),
    dims: int = typer.Option(2048, "--dims", help="Inception feature dimension: 64, 192, 768 or 2048."),
    layer: str = typer.Option("pool5", "--layer", help="VGG16 layer for --extractor vgg16."),
    source: Path | None = typer.Option(None, "--source", help="Synthetic set (default: the run's)."),
    target: Path | None = typer.Option(None, "--target", help="Real set (default: the run's)."),
    max_images: int | None = typer.Option(None, "--max-images", min=2, help="Use at most this many per set."),
    allow_few_samples: bool = typer.Option(
        False, "--allow-few-samples", help="Accept fewer images than feature dimensions (biased FID/KID)."
    ),
    kid_subset_size: int = typer.Option(1000, "--kid-subset-size", min=2, help="Images per KID subset."),
    kid_subsets: int = typer.Option(100, "--kid-subsets", min=1, help="Number of KID subsets."),
    device: str = device_option(),
) -> None:
    """FID/KID of synthetic vs real and refined vs real, PCA plot and report.md in the run folder."""
    import simreal

    res = simreal.refine.evaluate(run, extractor, weights=weights, dims=dims, layer=layer, source=source,
                                  target=target, max_images=max_images, allow_few_samples=allow_few_samples,
                                  kid_subset_size=kid_subset_size, kid_subsets=kid_subsets, device=device)
    m = res.metrics
    typer.echo(f"FID synthetic-real {m['fid_synthetic_real']:.4f}  refined-real {m['fid_refined_real']:.4f}")
    typer.echo(f"report: {res.report}")


@refine_app.command("import")
def import_cmd(
    weights: Path = typer.Option(..., "--weights", help="Reference generator weights (latest_net_G_A.pth, CUT's "
                                                        "latest_net_G.pth, or safetensors)."),
    out: Path = typer.Option(..., "--out", "-o", help="New refiner run folder."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Refiner config describing the generator "
                                                                    "(default: CycleGAN, 9 blocks, ngf 64)."),
    channels: int = typer.Option(3, "--channels", min=1, max=3, help="Image channels of the generator (1 or 3)."),
) -> None:
    """Make a refiner run from a reference implementation's generator, to refine datasets with it."""
    import simreal

    typer.echo(f"{out}: imported {weights} as {simreal.refine.import_generator(weights, out, config, channels)}")


def register(app: typer.Typer) -> None:
    """Add the ``refine`` command group."""
    app.add_typer(refine_app, name="refine")
