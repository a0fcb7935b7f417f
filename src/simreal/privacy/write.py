"""``simreal anonymize apply``: write the anonymized dataset of a trained run.

The output has the same image records (ids, labels, annotations, in the same order) with domain
``anonymized`` and neutral file names (``images/000000.png``, ...), the images replaced by the
autoencoder's outputs (or, with substitution, by the nearest training image of the chosen identity), the
private field removed from every record unless kept for auditing, and the provenance (run, checkpoint,
lambda, parent dataset) in ``dataset.json``. The folder appears complete or not at all.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.datasets import Dataset, DatasetWriter, encode_image
from simreal.errors import DatasetError, RunError, warn
from simreal.privacy.config import AnonymizeConfig
from simreal.privacy.data import drop_field, image_channels, load_images
from simreal.privacy.fit import RUN_KIND
from simreal.privacy.nets import ConvAutoencoder
from simreal.privacy.substitute import load_pool, substitute, substitution_summary
from simreal.refine.write import ApplyResult  # the dataset-writing result shared by the stages
from simreal.runtime.device import resolve_device
from simreal.runtime.io import atomic_dir
from simreal.runtime.progress import close_logger, folder_logger, make_progress
from simreal.runtime.runstore import RunStore, load_module


@dataclass(frozen=True)
class Anonymizer:
    """A trained autoencoder with what apply needs to know about its run."""

    ae: ConvAutoencoder
    cfg: AnonymizeConfig
    store: RunStore
    meta: dict[str, Any]


def load_anonymizer(run: str | Path, device: str | None = None) -> Anonymizer:
    """The final autoencoder of an anonymize run, in eval mode on ``device`` (default: the run's)."""
    store = RunStore.open(run, RUN_KIND)
    cfg = store.config(AnonymizeConfig)
    tensors, meta = store.load_model_state("final")
    ae = ConvAutoencoder(int(meta["channels"]), cfg.model.width, cfg.model.code_channels)
    load_module(ae, tensors, str(store.model_path("final")))
    dev = resolve_device(device or cfg.device, "--device" if device else "device")
    return Anonymizer(ae.to(dev).eval(), cfg, store, meta)


def anonymize_arrays(ae: torch.nn.Module, images: np.ndarray, batch_size: int = 256,
                     progress: Any = None, task: Any = None) -> np.ndarray:
    """The autoencoder's outputs for float32 (N, C, H, W) images in [0, 1]."""
    dev = next(ae.parameters()).device
    out = np.empty_like(images)
    with torch.no_grad():
        for a in range(0, len(images), batch_size):
            out[a:a + batch_size] = ae(torch.from_numpy(images[a:a + batch_size]).to(dev)).cpu().numpy()
            if progress is not None:
                progress.advance(task, min(batch_size, len(images) - a))
    return out


def _to_uint8(img: np.ndarray) -> np.ndarray:
    arr = (np.clip(img, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def apply(run: str | Path, data: str | Path, out: str | Path, *, keep_private: bool = False,
          substitute_identity: bool | None = None, batch_size: int = 256, device: str | None = None,
          progress: bool = True, command: str = "simreal anonymize apply") -> ApplyResult:
    """Anonymize every image of ``data`` with run ``run`` into the new dataset folder ``out``.

    ``keep_private`` keeps the private field in the records (for auditing only: the release should not
    carry it); ``substitute_identity`` (default: the run's ``intertwined.substitute``) replaces each output by
    the nearest training image of the run's chosen identity."""
    run, out = Path(run), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: exists and is not empty; choose another --out")
    anon = load_anonymizer(run, device)
    meta = anon.meta
    field = str(meta["private_label"])
    use_sub = anon.cfg.intertwined.substitute if substitute_identity is None else substitute_identity
    pool = None
    if use_sub:
        if not meta.get("identity"):
            raise RunError(f"{run}: substitution needs a run trained in intertwined mode (intertwined.enabled)")
        pool = load_pool(anon.store.ck / "pool.safetensors")
    ds = Dataset.open(data)
    channels = image_channels(ds, anon.cfg.data.channels)
    if channels != int(meta["channels"]):
        raise DatasetError(f"{ds.root}: {channels}-channel images, run {run} anonymizes {meta['channels']}-channel "
                           "images")
    images = load_images(ds, channels, progress, "load images")
    if images.shape[2:] != (int(meta["height"]), int(meta["width"])):
        raise DatasetError(f"{ds.root}: images are {images.shape[3]}x{images.shape[2]}, run {run} was trained on "
                           f"{meta['width']}x{meta['height']} images")
    with make_progress("img", disable=not progress) as prog:
        task = prog.add_task("anonymize", total=len(images))
        outputs = anonymize_arrays(anon.ae, images, batch_size, prog, task)
    sub_ids: list[int] | None = None
    summary = None
    if pool is not None:
        outputs, sub_ids = substitute(outputs, pool)
        summary = substitution_summary(sub_ids, pool)
        if summary["collapsed"]:
            warn(f"{out}: one training image of {pool.identity!r} stands in for "
                 f"{100 * summary['largest_share']:.0f} % of the release ({summary['used']} of "
                 f"{summary['pool_images']} pool images used): the autoencoder's outputs converged to one face, "
                 "so the release hides everything, not only the identity (see docs/anonymize.md)")
    provenance = {
        "command": command, "anonymize_run": str(run), "checkpoint": "final", "lambda": meta.get("lambda"),
        "private_label": field, "private_field_kept": bool(keep_private),
        "intertwined_identity": meta.get("identity"), "substituted": pool is not None, "substitution": summary,
        "parents": [{"path": str(data), "name": ds.name, "domain": ds.domain}],
    }
    records = []
    with atomic_dir(out) as tmp:
        writer = DatasetWriter(tmp, f"{ds.name}-anonymized", "anonymized", ds.categories, provenance=provenance)
        for i, rec in enumerate(ds.images):
            # neutral names: the original file names may tell the private label
            name = writer.write_image(f"{i:06d}.png", encode_image(_to_uint8(outputs[i])), durable=False)
            if rec.get("mask_file"):  # masks (and boxes) still describe the anonymized image
                writer.write_file(rec["mask_file"], (ds.root / rec["mask_file"]).read_bytes(), durable=False)
            new = {**(rec if keep_private else drop_field(rec, field)), "file_name": name, "domain": "anonymized",
                   "width": int(outputs.shape[3]), "height": int(outputs.shape[2])}
            if keep_private:
                new["anonymized_from"] = rec["file_name"]
            if sub_ids is not None:
                new["substituted_by"] = sub_ids[i]
            records.append(new)
        annotations = [{k: v for k, v in a.items() if k != "id"} for a in ds.annotations]
        log = folder_logger(tmp, "anonymize-apply")
        log.info("%s: %d images of %s anonymized with %s (lambda %s, private field %r %s%s)", out, len(records), data,
                 run, meta.get("lambda"), field, "kept" if keep_private else "removed",
                 f", substituted by training images of {pool.identity!r}" if pool is not None else "")
        close_logger(log)
        info = writer.finalize(records, annotations, extra_info={"anonymized": {
            "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "private_label": field, "private_field_kept": bool(keep_private), "substituted": pool is not None}})
    return ApplyResult(out, info)
