"""Image-to-image refiners (CycleGAN family, AGGAN, CUT) and crop-refine-reinsert."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simreal.refine.arrays import refine_arrays

__all__ = ["refine_arrays"]


def __getattr__(name: str) -> Any:
    # imported on first use, so ``simreal.refine.config`` & co. stay importable without torch
    if name == "refine_arrays":
        from simreal.refine.arrays import refine_arrays

        return refine_arrays
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
