"""``simreal refine``: train a sim-to-real refiner, apply it to a dataset, evaluate it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from simreal.config import parse_overrides

refine_app = typer.Typer(
    name="refine", help="Sim-to-real refinement (CycleGAN family, AGGAN, CUT).", no_args_is_help=True
)




@refine_app.command("train")
def train_cmd(
    source: Path = typer.Option(..., "--source", help="Synthetic dataset (domain A)."),
    target: Path = typer.Option(
        ..., "--target", help="Real images: dataset folder or image folder (domain B)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (or resume)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Refiner config YAML (refiner.yaml)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set train.epochs=5."),
) -> None:
    """Train a refiner; rerunning the same command resumes from the last checkpoint."""
    from simreal.config import load_config
    from simreal.refine.config import RefinerConfig
    from simreal.refine.train import train

    cfg = None
    if config is not None or overrides:
        if config is None and (out / "config.yaml").is_file():
            config = out / "config.yaml"
        cfg = load_config(RefinerConfig, config, parse_overrides(overrides))
    res = train(source, target, out, cfg)
    typer.echo(
        f"{res['run']}: {res['epochs']} epochs ({res['iterations']} iterations); checkpoint {res['checkpoint']}"
    )


@refine_app.command("apply")
def apply_cmd(
    run: Path = typer.Option(..., "--run", help="Refiner run folder."),
    source: Path = typer.Option(..., "--source", help="Dataset (or image folder) to refine."),
    out: Path = typer.Option(..., "--out", "-o", help="Refined dataset folder to write (or resume)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images (or crops) per forward pass."),
    crops: bool | None = typer.Option(
        None,
        "--crops/--whole",
        help="Crop-refine-reinsert objects, or refine whole images (default: run config).",
    ),
) -> None:
    """Refine every image of a dataset; annotations and masks are copied unchanged (domain "refined")."""
    from simreal.refine.apply import apply

    info = apply(
        run, source, out, batch_size=batch_size, crops=crops, command=" ".join(["simreal", *sys.argv[1:]])
    )
    typer.echo(
        f"{out}: {info['counts']['images']} refined images, {info['counts']['annotations']} annotations"
    )


@refine_app.command("eval")
def eval_cmd(
    run: Path = typer.Option(..., "--run", help="Refiner run folder."),
    extractor: str = typer.Option("inception", "--extractor", help="inception | vgg16 | pixels."),
    weights: Path | None = typer.Option(None, "--weights", help="Local weights file of the extractor."),
    dims: int = typer.Option(2048, "--dims", help="Inception feature dimension: 64, 192, 768 or 2048."),
    layer: str = typer.Option("pool5", "--layer", help="VGG16 layer for --extractor vgg16."),
    source: Path | None = typer.Option(None, "--source", help="Synthetic set (default: the run's)."),
    target: Path | None = typer.Option(None, "--target", help="Real set (default: the run's)."),
    max_images: int | None = typer.Option(None, "--max-images", min=2, help="Use at most this many per set."),
    allow_few_samples: bool = typer.Option(
        False, "--allow-few-samples", help="Accept fewer images than feature dimensions (biased FID/KID)."
    ),
    kid_subset_size: int = typer.Option(1000, "--kid-subset-size", min=2),
    kid_subsets: int = typer.Option(100, "--kid-subsets", min=1),
) -> None:
    """FID/KID of synthetic vs real and refined vs real, PCA plot and report.md in the run folder."""
    from simreal.metrics.features import make_extractor
    from simreal.refine.evaluate import evaluate
    from simreal.refine.run import read_run

    read_run(run)
    ext = make_extractor(extractor, weights, dims, layer)
    res = evaluate(
        run, ext, extractor, source, target, max_images, allow_few_samples, kid_subset_size, kid_subsets
    )
    typer.echo(
        f"FID synthetic-real {res['fid_synthetic_real']:.4f}  refined-real {res['fid_refined_real']:.4f}"
    )
    typer.echo(f"{run / 'report.md'}")


def register(app: typer.Typer) -> None:
    """Add the ``refine`` command group."""
    app.add_typer(refine_app, name="refine")
