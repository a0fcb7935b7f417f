"""``simreal refine eval``: FID/KID of synthetic vs real and refined vs real, a PCA plot of the three
sets, loss curves, written as ``eval.json`` and ``report.md`` in the run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.datasets import Dataset, extras
from simreal.errors import DatasetError
from simreal.metrics.features import extract_features
from simreal.metrics.fid import fid_from_features
from simreal.metrics.kid import kid_from_features
from simreal.metrics.pca import pca_plot
from simreal.refine.crops import ann_center, crop_refine_reinsert
from simreal.refine.data import to_tensor, to_uint8
from simreal.refine.run import host_refine_fn, load_refiner
from simreal.runtime.device import resolve_device
from simreal.runtime.io import atomic_path, atomic_write_json, atomic_write_text


def refined_images(run: str | Path, source: str | Path, max_images: int | None = None,
                   device: str | None = "cpu") -> list[np.ndarray]:
    """Refine the first ``max_images`` images of ``source`` in memory (RGB uint8), on ``device``."""
    model, cfg, info, _ = load_refiner(run, device=device)
    refine = host_refine_fn(model)
    ds = Dataset.open(source)
    mode = "L" if int(info["channels"]) == 1 else "RGB"
    n = len(ds) if max_images is None else min(max_images, len(ds))
    out = []
    with torch.no_grad():
        for i in range(n):
            img = ds.load_image(i, mode)
            if cfg.crops.enabled:
                anns = [a for a in ds.anns(i) if ann_center(a) is not None]
                centers = np.array([ann_center(a) for a in anns], dtype=np.float64).reshape(-1, 2)
                ids = [extras(a).get("instance_id") for a in anns]
                mask = ds.load_mask(i) if all(v is not None for v in ids) else None
                y = crop_refine_reinsert(
                    img,
                    centers,
                    refine,
                    cfg.crops.size,
                    instance_mask=mask,
                    instance_ids=[int(v) for v in ids] if mask is not None else None,
                    rotate_upright=cfg.crops.rotate_upright,
                    image_center=cfg.crops.center,
                    feather=cfg.crops.feather,
                    dilate=cfg.crops.mask_dilate,
                    reinsert=cfg.crops.reinsert,
                )
            else:
                y = to_uint8(refine(to_tensor(img)[None])[0])
            if y.ndim == 2:
                y = np.repeat(y[:, :, None], 3, axis=2)
            out.append(y)
    return out


def _loss_plot(metrics: Path, path: Path) -> bool:
    if not metrics.is_file():
        return False
    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in rows[0] if k not in ("iteration", "epoch", "lr", "it_per_s")]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    its = [r["iteration"] for r in rows]
    for k in keys:
        ax.plot(its, [r.get(k, np.nan) for r in rows], label=k)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True


@dataclass(frozen=True)
class RefineEvalResult:
    """What :func:`evaluate` returns: the run, and every figure written to ``eval.json``."""

    run: Path
    metrics: dict[str, Any]

    @property
    def report(self) -> Path:
        return self.run / "report.md"


def evaluate(
    run: str | Path,
    extractor: Any = "inception",
    extractor_name: str | None = None,
    *,
    weights: str | Path | None = None,
    dims: int = 2048,
    layer: str = "pool5",
    source: str | Path | None = None,
    target: str | Path | None = None,
    max_images: int | None = None,
    allow_few_samples: bool = False,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    seed: int = 2020,
    device: str | None = "auto",
) -> dict[str, Any]:
    """Compare synthetic, refined and real images of a run in the feature space of ``extractor`` (a name:
    inception | vgg16 | pixels, with its local ``weights`` file; or an extractor object); networks run on
    ``device``; writes eval.json and report.md into the run folder."""
    run = Path(run)
    dev = resolve_device(device, "--device")
    _, _, info, meta = load_refiner(run)
    if isinstance(extractor, str):
        from simreal.metrics.features import make_extractor

        extractor_name = extractor_name or extractor
        extractor = make_extractor(extractor, weights, dims, layer)
    extractor_name = extractor_name or type(extractor).__name__
    source = source or info["source"]
    target = target or info["target"]
    feats_syn = extract_features(source, extractor, max_images=max_images, description="synthetic", device=dev)
    feats_real = extract_features(target, extractor, max_images=max_images, description="real", device=dev)
    refined = refined_images(run, source, max_images, device=str(dev))
    feats_ref = extract_features(refined, extractor, description="refined", device=dev)
    res: dict[str, Any] = {
        "run": str(run),
        "checkpoint_epoch": meta.get("epoch"),
        "extractor": extractor_name,
        "source": str(source),
        "target": str(target),
        "counts": {"synthetic": len(feats_syn), "refined": len(feats_ref), "real": len(feats_real)},
    }
    for name, f in (("synthetic", feats_syn), ("refined", feats_ref)):
        res[f"fid_{name}_real"] = fid_from_features(f, feats_real, allow_few_samples=allow_few_samples)
        try:
            mean, std = kid_from_features(
                f,
                feats_real,
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                seed=seed,
                allow_small=allow_few_samples,
            )
            res[f"kid_{name}_real"] = {"mean": mean, "std": std}
        except DatasetError as exc:
            if not allow_few_samples:
                raise
            res[f"kid_{name}_real"] = {"error": str(exc)}
    pca = pca_plot(
        [feats_syn, feats_ref, feats_real],
        ["synthetic", "refined", "real"],
        run / "eval_pca.png",
        title=f"PCA of {extractor_name} features",
    )
    res["pca"] = pca
    has_losses = _loss_plot(run / "metrics.jsonl", run / "loss_curves.png")
    atomic_write_json(run / "eval.json", res)
    lines = [
        f"# Refiner run `{run.name}`",
        "",
        f"Model **{info.get('model')}**, checkpoint epoch {meta.get('epoch')}; features: {extractor_name}.",
        "",
        "| set vs real | FID | KID |",
        "|---|---|---|",
    ]
    for name in ("synthetic", "refined"):
        kid = res[f"kid_{name}_real"]
        kid_s = f"{kid['mean']:.5f} ± {kid['std']:.5f}" if "mean" in kid else "n/a"
        lines.append(f"| {name} | {res[f'fid_{name}_real']:.4f} | {kid_s} |")
    lines += ["", "![PCA](eval_pca.png)", ""]
    if has_losses:
        lines += ["![losses](loss_curves.png)", ""]
    samples = sorted((run / "samples").glob("epoch_*.png")) if (run / "samples").is_dir() else []
    if samples:
        lines += [f"Last sample grid (input | refined | cycle): ![samples](samples/{samples[-1].name})", ""]
    atomic_write_text(run / "report.md", "\n".join(lines))
    return RefineEvalResult(run, res)
