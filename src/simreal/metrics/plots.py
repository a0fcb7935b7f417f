"""PNG plots for reports (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_curves(path: str | Path, curves: Sequence[tuple[np.ndarray, np.ndarray, str]], xlabel: str,
                ylabel: str, title: str, diagonal: bool = False) -> Path:
    """Line plot of (x, y, label) curves."""
    from simreal.runtime.io import atomic_path

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for x, y, label in curves:
        ax.plot(x, y, label=label)
    if diagonal:
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if curves:
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def save_confusion(path: str | Path, cm: np.ndarray, names: list[str]) -> Path:
    """Confusion matrix heat map (rows = true class)."""
    from simreal.runtime.io import atomic_path

    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
