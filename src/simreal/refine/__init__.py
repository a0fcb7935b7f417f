"""Image-to-image refiners (CycleGAN family, AGGAN, CUT) and crop-refine-reinsert.

The package is also the stage function: ``simreal.refine(source, target, out, config)`` trains (or
resumes) a refiner run (:func:`train`); :func:`apply` writes a refined dataset with a run and
:func:`evaluate` compares synthetic, refined and real images (FID/KID, PCA). Heavy modules are
imported on first use, so ``simreal.refine.config`` stays importable without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simreal._callable import make_callable

if TYPE_CHECKING:
    from simreal.refine.arrays import refine_arrays
    from simreal.refine.fit import RefineResult
    from simreal.refine.report import RefineEvalResult
    from simreal.refine.write import ApplyResult

__all__ = ["apply", "evaluate", "import_generator", "refine_arrays", "train"]


def train(*args: Any, **kwargs: Any) -> RefineResult:
    """Train or resume a refiner run; see :func:`simreal.refine.fit.train`."""
    from simreal.refine.fit import train as _train

    return _train(*args, **kwargs)


def apply(*args: Any, **kwargs: Any) -> ApplyResult:
    """Write a refined dataset with a trained run; see :func:`simreal.refine.write.apply`."""
    from simreal.refine.write import apply as _apply

    return _apply(*args, **kwargs)


def evaluate(*args: Any, **kwargs: Any) -> RefineEvalResult:
    """FID/KID and PCA of synthetic, refined and real images; see :func:`simreal.refine.report.evaluate`."""
    from simreal.refine.report import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def import_generator(*args: Any, **kwargs: Any) -> Any:
    """A refiner run from reference generator weights; see :func:`simreal.refine.run.import_generator`."""
    from simreal.refine.run import import_generator as _import

    return _import(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "refine_arrays":
        from simreal.refine.arrays import refine_arrays

        return refine_arrays
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


make_callable(__name__, "train")
