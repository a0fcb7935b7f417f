"""``simreal metrics``: FID, KID and PCA plots between image sets (dataset folders or image folders)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import typer

from simreal.cli.common import device_option, quiet_option

Extractor = Literal["inception", "vgg16", "pixels"]

metrics_app = typer.Typer(
    name="metrics", help="Distribution metrics between image sets.", no_args_is_help=True
)

_EXTRACTOR = typer.Option("inception", "--extractor", help="Feature space: inception (pytorch-fid), vgg16 or "
                                                               "pixels.")
_WEIGHTS = typer.Option(None, "--weights", help="Local weights file (pt_inception-2015-12-05-6726825d.pth).")
_DIMS = typer.Option(2048, "--dims", help="Inception feature dimension: 64, 192, 768 or 2048.")
_LAYER = typer.Option("pool5", "--layer", help="VGG16 layer for --extractor vgg16.")
_BATCH = typer.Option(50, "--batch-size", min=1, help="Images per forward pass.")
_MAX = typer.Option(None, "--max-images", min=1, help="Use at most this many images per set.")
_JSON = typer.Option(None, "--json", help="Also write the result as JSON here.")


def _features(
    paths: list[Path],
    extractor: str,
    weights: Path | None,
    dims: int,
    layer: str,
    batch: int,
    max_images: int | None,
    quiet: bool = False,
    device: str = "auto",
) -> list:
    from simreal.metrics.features import extract_features, make_extractor
    from simreal.runtime.device import resolve_device

    dev = resolve_device(device, "--device")
    ext = make_extractor(extractor, weights, dims, layer)
    return [
        extract_features(p, ext, batch_size=batch, max_images=max_images, description=p.name, progress=not quiet,
                         device=dev)
        for p in paths
    ]


def _write_json(path: Path | None, obj: dict) -> None:
    if path is not None:
        from simreal.runtime.io import atomic_write_json

        atomic_write_json(path, obj)


@metrics_app.command("fid")
def fid_cmd(
    a: Path = typer.Argument(..., help="First image set."),
    b: Path = typer.Argument(..., help="Second image set."),
    extractor: Extractor = _EXTRACTOR,
    weights: Path | None = _WEIGHTS,
    dims: int = _DIMS,
    layer: str = _LAYER,
    batch_size: int = _BATCH,
    max_images: int | None = _MAX,
    method: Literal["sqrtm", "eigvals"] = typer.Option(
        "sqrtm", "--method", help="Matrix square root: sqrtm (pytorch-fid) or eigvals (torch-fidelity)."),
    allow_few_samples: bool = typer.Option(
        False, "--allow-few-samples", help="Accept fewer images than feature dimensions (biased estimate)."
    ),
    json_out: Path | None = _JSON,
    device: str = device_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Fréchet distance between the feature distributions of two image sets."""
    from simreal.metrics.fid import fid_from_features

    fa, fb = _features([a, b], extractor, weights, dims, layer, batch_size, max_images, quiet, device)
    value = fid_from_features(fa, fb, allow_few_samples=allow_few_samples, method=method)
    typer.echo(f"FID {value:.6f}")
    _write_json(
        json_out, {"fid": value, "a": str(a), "b": str(b), "extractor": extractor, "n": [len(fa), len(fb)]}
    )


@metrics_app.command("kid")
def kid_cmd(
    a: Path = typer.Argument(..., help="First image set."),
    b: Path = typer.Argument(..., help="Second image set."),
    extractor: Extractor = _EXTRACTOR,
    weights: Path | None = _WEIGHTS,
    dims: int = _DIMS,
    layer: str = _LAYER,
    batch_size: int = _BATCH,
    max_images: int | None = _MAX,
    subsets: int = typer.Option(100, "--subsets", min=1, help="Number of random subsets."),
    subset_size: int = typer.Option(1000, "--subset-size", min=2, help="Images per subset."),
    seed: int = typer.Option(2020, "--seed", help="Seed of the subset draws."),
    allow_small: bool = typer.Option(
        False, "--allow-small", help="Shrink the subset size to the smaller set."
    ),
    json_out: Path | None = _JSON,
    device: str = device_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Kernel Inception Distance (cubic polynomial kernel, unbiased MMD², seeded subsets)."""
    from simreal.metrics.kid import kid_from_features

    fa, fb = _features([a, b], extractor, weights, dims, layer, batch_size, max_images, quiet, device)
    mean, std = kid_from_features(
        fa, fb, subsets=subsets, subset_size=subset_size, seed=seed, allow_small=allow_small
    )
    typer.echo(f"KID {mean:.6f} ± {std:.6f}")
    _write_json(
        json_out, {"kid_mean": mean, "kid_std": std, "a": str(a), "b": str(b), "extractor": extractor}
    )


@metrics_app.command("pca")
def pca_cmd(
    sets: list[Path] = typer.Argument(..., help="Image sets, e.g. synthetic refined real."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG plot to write."),
    extractor: Extractor = _EXTRACTOR,
    weights: Path | None = _WEIGHTS,
    dims: int = _DIMS,
    layer: str = _LAYER,
    batch_size: int = _BATCH,
    max_images: int | None = _MAX,
    labels: str | None = typer.Option(
        None, "--labels", help="Comma-separated names (default: folder names)."
    ),
    device: str = device_option(),
    quiet: bool = quiet_option(),
) -> None:
    """2-D PCA scatter plot of the sets' features (fitted on all sets together)."""
    from simreal.errors import ConfigError
    from simreal.metrics.pca import pca_plot

    names = [s.name for s in sets] if labels is None else [x.strip() for x in labels.split(",")]
    if len(names) != len(sets):
        raise ConfigError(f"--labels: {len(names)} names for {len(sets)} sets")
    feats = _features(list(sets), extractor, weights, dims, layer, batch_size, max_images, quiet, device)
    info = pca_plot(feats, names, out, title=f"PCA of {extractor} features")
    typer.echo(
        f"{out}: explained variance {json.dumps([round(r, 4) for r in info['explained_variance_ratio']])}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``metrics`` command group."""
    app.add_typer(metrics_app, name="metrics")
