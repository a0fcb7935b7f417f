"""PCA scatter plots (scikit-learn PCA, matplotlib PNG) of feature sets, e.g. synthetic, refined, real."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simreal.errors import DatasetError
from simreal.runtime.io import atomic_path


def pca_project(
    sets: Sequence[np.ndarray], n_components: int = 2, seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray]:
    """Fit PCA on all sets together; return each set's projection and the explained variance ratios."""
    from sklearn.decomposition import PCA

    if not sets:
        raise DatasetError("PCA needs at least one feature set")
    dims = {s.shape[1] for s in sets}
    if len(dims) != 1:
        raise DatasetError(f"feature sets differ in dimension: {sorted(dims)}")
    allf = np.concatenate(sets, 0)
    k = min(n_components, allf.shape[0], allf.shape[1])
    if k < 1 or allf.shape[0] < 2:
        raise DatasetError("PCA needs at least 2 images in total")
    pca = PCA(n_components=k, random_state=seed)
    proj = pca.fit_transform(allf)
    if k < 2:
        proj = np.concatenate([proj, np.zeros((len(proj), 2 - k))], 1)
    out, start = [], 0
    for s in sets:
        out.append(proj[start : start + len(s)])
        start += len(s)
    return out, pca.explained_variance_ratio_


def pca_plot(
    sets: Sequence[np.ndarray],
    labels: Sequence[str],
    path: str | Path,
    title: str = "PCA of features",
    seed: int = 0,
) -> dict[str, Any]:
    """Write a 2-D PCA scatter PNG of the sets (atomically); returns the explained variance and means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    proj, ratio = pca_project(sets, 2, seed)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    for p, label in zip(proj, labels, strict=True):
        ax.scatter(p[:, 0], p[:, 1], s=10, alpha=0.6, label=f"{label} (n={len(p)})")
    ratios = list(ratio) + [0.0] * (2 - len(ratio))
    ax.set_xlabel(f"PC1 ({100 * ratios[0]:.1f}%)")
    ax.set_ylabel(f"PC2 ({100 * ratios[1]:.1f}%)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return {
        "explained_variance_ratio": [float(r) for r in ratio],
        "centroids": {lab: p.mean(0).tolist() for p, lab in zip(proj, labels, strict=True)},
    }
