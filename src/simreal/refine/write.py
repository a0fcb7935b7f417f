"""``simreal refine apply``: refine every image of a dataset with a trained run, copying annotations and
masks unchanged. Whole images go through the generator at their own resolution (batched by size);
with ``crops.enabled`` each annotated object is cut out, refined and reinserted (crop-refine-reinsert).
Resumable: each finished image is recorded in ``manifest.sqlite`` and skipped on rerun."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.config import dump_config
from simreal.datasets import Dataset, DatasetWriter, encode_image, extras
from simreal.errors import DatasetError, RunError
from simreal.refine.crops import ann_center, crop_refine_reinsert
from simreal.refine.data import dataset_channels, to_tensor, to_uint8
from simreal.refine.run import host_refine_fn, load_refiner
from simreal.runtime.manifest import DONE, FAILED, Manifest
from simreal.runtime.progress import close_logger, folder_logger, make_progress

MANIFEST = "manifest.sqlite"


def _check_out(out: Path, run: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise RunError(f"{out}: exists and is not a folder")
    if any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise RunError(f"{out}: exists and is not an unfinished refine output; choose another --out")
    if (out / MANIFEST).is_file():
        with Manifest(out / MANIFEST) as man:
            prev = man.get_meta("refine_run")
        if prev is not None and Path(prev).resolve() != run.resolve():
            raise RunError(f"{out}: holds the output of another run ({prev}); choose another --out")


def _out_name(file_name: str) -> str:
    return str(Path(file_name).with_suffix(".png"))


@dataclass(frozen=True)
class ApplyResult:
    """What :func:`apply` returns: the refined dataset folder and its ``dataset.json`` content."""

    out: Path
    info: dict[str, Any]

    @property
    def images(self) -> int:
        return int(self.info["counts"]["images"])

    @property
    def annotations(self) -> int:
        return int(self.info["counts"]["annotations"])


def apply(
    run: str | Path,
    source: str | Path,
    out: str | Path,
    *,
    batch_size: int = 8,
    crops: bool | None = None,
    progress: bool = True,
    command: str = "simreal refine apply",
    device: str | None = "auto",
) -> ApplyResult:
    """Refine ``source`` into the dataset folder ``out`` (domain "refined"; annotations and masks copied
    unchanged) with the run's generator on ``device``; ``crops`` None uses the run's crop-refine-reinsert
    setting. Resumes an interrupted run."""
    run, out = Path(run), Path(out)
    model, cfg, info, meta = load_refiner(run, device=device)
    ds = Dataset.open(source)
    channels = int(info["channels"])
    src_channels = dataset_channels(ds)
    if src_channels != channels and cfg.data.channels is None:
        raise DatasetError(
            f"{source}: {src_channels}-channel images but run {run} refines {channels}-channel images"
        )
    use_crops = cfg.crops.enabled if crops is None else crops
    if use_crops:
        small = [
            r["file_name"]
            for r in ds.images
            if min(r.get("width") or 10**9, r.get("height") or 10**9) < cfg.crops.size
        ]
        if small:
            raise DatasetError(
                f"{source}: {len(small)} image(s) smaller than crops.size {cfg.crops.size}, e.g. {small[0]}"
            )
    _check_out(out, run)
    mode = "L" if channels == 1 else "RGB"
    writer = DatasetWriter(
        out,
        f"{ds.name}-refined",
        "refined",
        ds.categories,
        provenance={
            "command": command,
            "refine_run": str(run),
            "checkpoint": meta.get("checkpoint"),
            "checkpoint_epoch": meta.get("epoch"),
            "model": cfg.model,
            "config": cfg.model_dump(mode="json"),
            "crop_refine_reinsert": use_crops,
            "parents": [{"path": str(source), "name": ds.name, "domain": ds.domain}],
        },
    )
    log = folder_logger(out, "refine-apply", "log.txt")
    manifest = Manifest(out / MANIFEST)
    manifest.set_meta("refine_run", str(run))
    manifest.ensure((i, 0) for i in range(len(ds)))
    done = set(manifest.ids_with_status(DONE))
    todo = [i for i in range(len(ds)) if i not in done]
    log.info("refining %d of %d images of %s with %s (crops=%s)", len(todo), len(ds), source, run, use_crops)

    refine_fn = host_refine_fn(model)
    failures = 0
    with make_progress("img", disable=not progress) as prog:
        task = prog.add_task("refine apply", total=len(ds), completed=len(done))
        if use_crops:
            for i in todo:
                failures += _one_crop_image(ds, i, writer, manifest, refine_fn, cfg, mode, batch_size, log)
                prog.advance(task)
        else:
            for group in _size_groups(ds, todo, mode, batch_size):
                failures += _whole_images(ds, group, writer, manifest, refine_fn, mode, log)
                prog.advance(task, len(group))
    records = {r["id"]: r["result"] for r in manifest.rows(DONE)}
    manifest.close()
    if failures:
        log.info("%d images failed; see %s", failures, out / MANIFEST)
    images = []
    kept_ids = set()
    for i in range(len(ds)):
        rec = records.get(i)
        if rec is not None:
            images.append(rec)
            kept_ids.add(rec["id"])
    annotations = [
        {k: v for k, v in a.items() if k != "id"} for a in ds.annotations if a["image_id"] in kept_ids
    ]
    result = writer.finalize(
        images,
        annotations,
        extra_info={
            "refined": {
                "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "failed": failures,
            }
        },
    )
    (out / "refiner_config.yaml").write_text(dump_config(cfg), encoding="utf-8")
    close_logger(log)
    return ApplyResult(out, result)


def _size_groups(ds: Dataset, todo: list[int], mode: str, batch_size: int) -> list[list[int]]:
    """Consecutive runs of equal-size images, at most ``batch_size`` long (sizes from the records when
    present, else from the files)."""
    groups: list[list[int]] = []
    last: tuple[int, int] | None = None
    for i in todo:
        rec = ds.record(i)
        size = (rec.get("width"), rec.get("height"))
        if None in size:
            size = (-1, i)  # unknown: its own group
        if groups and size == last and len(groups[-1]) < batch_size:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = size  # type: ignore[assignment]
    return groups


def _record_for(ds: Dataset, i: int, writer: DatasetWriter, image: np.ndarray) -> dict[str, Any]:
    rec = dict(ds.record(i))
    name = writer.write_image(_out_name(rec["file_name"]), encode_image(image))
    if rec.get("mask_file"):
        writer.write_file(rec["mask_file"], (ds.root / rec["mask_file"]).read_bytes())
    rec.update(
        {
            "file_name": name,
            "domain": "refined",
            "refined_from": ds.record(i)["file_name"],
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
        }
    )
    return rec


def _whole_images(
    ds: Dataset,
    group: list[int],
    writer: DatasetWriter,
    manifest: Manifest,
    refine_fn: Callable[[torch.Tensor], torch.Tensor],
    mode: str,
    log: Any,
) -> int:
    loaded: list[tuple[int, np.ndarray]] = []
    failures = 0
    for i in group:
        try:
            loaded.append((i, ds.load_image(i, mode)))
        except DatasetError as exc:
            manifest.record(i, FAILED, error=str(exc))
            log.info("failed %s", exc)
            failures += 1
    by_shape: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    for i, img in loaded:
        by_shape.setdefault(img.shape, []).append((i, img))
    for items in by_shape.values():
        x = torch.stack([to_tensor(img) for _, img in items])
        y = refine_fn(x)
        for (i, _), yi in zip(items, y, strict=True):
            rec = _record_for(ds, i, writer, to_uint8(yi))
            manifest.record(i, DONE, result=rec)
    return failures


def _one_crop_image(
    ds: Dataset,
    i: int,
    writer: DatasetWriter,
    manifest: Manifest,
    refine_fn: Callable[[torch.Tensor], torch.Tensor],
    cfg: Any,
    mode: str,
    batch_size: int,
    log: Any,
) -> int:
    c = cfg.crops
    try:
        img = ds.load_image(i, mode)
        anns = [a for a in ds.anns(i) if ann_center(a) is not None]
        centers = np.array([ann_center(a) for a in anns], dtype=np.float64).reshape(-1, 2)
        mask = ds.load_mask(i)
        ids = [int(extras(a)["instance_id"]) for a in anns if extras(a).get("instance_id") is not None]
        if mask is not None and len(ids) != len(anns):
            mask = None  # some objects have no instance id: fall back to window blending
        if min(img.shape[:2]) < c.size:
            raise DatasetError(
                f"{ds.image_path(i)}: image is {img.shape[1]}x{img.shape[0]}, smaller than crops.size {c.size}"
            )
        out = crop_refine_reinsert(
            img,
            centers,
            refine_fn,
            c.size,
            instance_mask=mask,
            instance_ids=ids if mask is not None else None,
            rotate_upright=c.rotate_upright,
            image_center=c.center,
            feather=c.feather,
            dilate=c.mask_dilate,
            batch_size=batch_size,
            reinsert=c.reinsert,
        )
    except DatasetError as exc:
        manifest.record(i, FAILED, error=str(exc))
        log.info("failed %s", exc)
        return 1
    manifest.record(i, DONE, result=_record_for(ds, i, writer, out))
    return 0
