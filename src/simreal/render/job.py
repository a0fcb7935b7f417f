"""The render driver: plans samples in the manifest, maps ``render_sample`` over the missing ones
with the chosen executor, writes files atomically, and writes the COCO file last.

Kill it at any moment and run the same command again: finished samples are skipped (their files
were in place before their manifest row said so) and only the missing ones are rendered."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simreal.datasets.coco import image_file
from simreal.datasets.contract import ANNOTATIONS_JSON, DATASET_JSON, DatasetWriter
from simreal.errors import ConfigError, DatasetError
from simreal.render.library import build_library
from simreal.render.sample import render_sample
from simreal.render.spec import SceneConfig
from simreal.runtime.executors import map_tasks
from simreal.runtime.manifest import DONE, FAILED, Manifest
from simreal.runtime.progress import close_logger, folder_logger, make_progress
from simreal.runtime.seeding import sample_seed

MANIFEST = "manifest.sqlite"


def config_hash(cfg: SceneConfig) -> str:
    """Identity of a dataset: the config without ``count`` (so a dataset can be extended)."""
    data = cfg.model_dump(mode="json")
    data.pop("count", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class RenderSummary:
    out: Path
    rendered: int
    skipped: int
    failed: int
    images: int
    annotations: int
    seconds: float
    render_seconds: float
    scene_seconds: float
    other_seconds: float
    first_error: str | None = None
    first_result_seconds: float = 0.0

    @property
    def steady_rate(self) -> float:
        """Images/s after the first result arrived (excludes worker start-up)."""
        span = self.seconds - self.first_result_seconds
        return (self.rendered + self.failed - 1) / span if self.rendered + self.failed > 1 and span > 0 else 0.0


def dry_run(cfg: SceneConfig) -> None:
    """Load every asset and draw sample 0's params, so that bad files and bad sampler settings
    (canister, post-effect and LUT specs) fail here, once, with a clear message, not in every worker."""
    import numpy as np

    from simreal.render.randomize import sample_params

    lib = build_library(cfg)
    if cfg.render.denoise:
        from simreal.render.denoise import INSTALL_HINT, available

        if not available():
            raise ConfigError(INSTALL_HINT)
    names = (cfg.post.get("lut") or {}).get("names") if isinstance(cfg.post.get("lut"), dict) else None
    missing = sorted(set(names or []) - set(lib.luts))
    if missing:
        raise ConfigError(f"post.lut.names: unknown LUT(s) {missing}; available: {sorted(lib.luts)}")
    try:
        sample_params(cfg, lib, np.random.default_rng(cfg.seed))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"config: a sampler rejected its settings ({exc})") from None


def _missing_files(out: Path, manifest: Manifest) -> set[int]:
    """Finished samples whose files are gone or empty (e.g. lost in a power cut): render them again."""
    missing = set()
    for row in manifest.rows(DONE):
        for item in row["result"] or []:
            rec = item["record"]
            paths = [image_file(out, rec)] + ([out / rec["mask_file"]] if rec.get("mask_file") else [])
            if any(not p.is_file() or p.stat().st_size == 0 for p in paths):
                missing.add(row["id"])
    return missing


def remove_stale_temporaries(out: Path) -> int:
    """Delete temporary files an interrupted run left behind (never a finished file)."""
    n = 0
    for sub in ("", "images", "masks"):
        folder = out / sub
        if folder.is_dir():
            for f in folder.glob(".*.tmp"):
                f.unlink(missing_ok=True)
                n += 1
    return n


def _check_out(out: Path, digest: str) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetError(f"{out}: output path exists and is not a folder")
    man = out / MANIFEST
    if man.is_file():
        m = Manifest(man)
        try:
            old = m.get_meta("config_hash")
        finally:
            m.close()
        if old is not None and old != digest:
            raise DatasetError(
                f"{out}: holds a different dataset (config hash {old}, this config {digest}); "
                "choose another --out or remove that folder"
            )
        return
    if (out / DATASET_JSON).exists() or (out / ANNOTATIONS_JSON).exists():
        raise DatasetError(f"{out}: holds a dataset not made by this render job (no {MANIFEST}); "
                           "choose another --out")
    if any(out.iterdir()):
        raise DatasetError(f"{out}: folder is not empty and is not a simreal dataset; choose another --out")


def render_dataset(
    cfg: SceneConfig,
    out: str | Path,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    command: str | None = None,
    quiet: bool = False,
    gpus_per_task: float | None = None,
) -> RenderSummary:
    """Render ``cfg`` into the dataset folder ``out`` (resuming whatever is already there). On Ray, tasks of the
    GPU variant ask for ``gpus_per_task`` GPUs (default 1; a fraction shares a GPU between tasks)."""
    from simreal.render.backends.mitsuba import check_variant

    out = Path(out)
    check_variant(cfg.render.variant)
    gpu_variant = cfg.render.variant.startswith("cuda")
    num_gpus = (1.0 if gpus_per_task is None else float(gpus_per_task)) if gpu_variant else 0.0
    if gpus_per_task is not None and gpus_per_task > 0 and not gpu_variant:
        raise ConfigError(f"--gpus-per-task {gpus_per_task:g}: render.variant {cfg.render.variant} renders on the "
                          "CPU (use cuda_ad_rgb)")
    digest = config_hash(cfg)
    _check_out(out, digest)
    dry_run(cfg)  # every file and sampler setting is checked before anything is written
    out.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temporaries(out)
    log = folder_logger(out, "render", "render.log")
    if stale:
        log.info("removed %d temporary files left by an interrupted run", stale)
    manifest = Manifest(out / MANIFEST)
    try:
        if manifest.get_meta("config_hash") is None:
            manifest.set_meta("config_hash", digest)
            manifest.set_meta("config", cfg.model_dump_json())
        manifest.ensure((i, sample_seed(cfg.seed, i)) for i in range(cfg.count))
        done = set(manifest.ids_with_status(DONE)) - _missing_files(out, manifest)
        todo = [i for i in range(cfg.count) if i not in done]
        log.info("render %s: %d samples, %d done, %d to do, workers=%d executor=%s variant=%s",
                 out, cfg.count, len(done), len(todo), workers, executor, cfg.render.variant)
        cfg_json = cfg.model_dump_json()
        writer = DatasetWriter(out, cfg.name, "synthetic", _categories(cfg))
        t0 = time.perf_counter()
        rendered = failed = 0
        first_error: str | None = None
        first_result = 0.0
        render_s = scene_s = other_s = 0.0
        last_commit = time.monotonic()
        with make_progress("img", disable=quiet) as prog:
            task = prog.add_task(f"render {out.name}", total=len(todo))
            for (_, _, index), result, err in map_tasks(
                render_sample, ((cfg_json, cfg.seed, i) for i in todo), executor, workers, address, num_gpus,
                fast_exit=True,
            ):
                if not first_result:
                    first_result = time.perf_counter() - t0
                if err is not None:
                    failed += 1
                    first_error = first_error or f"sample {index}: {err}"
                    manifest.record(index, FAILED, error=err, commit=False)
                    log.warning("sample %d failed: %s", index, err)
                else:
                    for rel, data in result["files"].items():
                        writer.write_file(rel, data, durable=False)  # atomic; re-checked on resume
                    manifest.record(index, DONE, params=result["params"], result=result["records"],
                                    timings=result["timings"], commit=False)
                    rendered += 1
                    render_s += result["timings"]["render"]
                    scene_s += result["timings"]["scene"]
                    other_s += result["timings"]["other"]
                if time.monotonic() - last_commit > 1.0:
                    manifest.commit()
                    last_commit = time.monotonic()
                prog.advance(task)
        manifest.commit()
        seconds = time.perf_counter() - t0
        n_images, n_anns = _finalize(cfg, writer, manifest, command)
        log.info("rendered %d, failed %d in %.1fs (%.2f img/s); dataset has %d images, %d annotations",
                 rendered, failed, seconds, rendered / max(seconds, 1e-9), n_images, n_anns)
        return RenderSummary(out, rendered, len(done), failed, n_images, n_anns, seconds, render_s, scene_s,
                             other_s, first_error, first_result)
    finally:
        manifest.close()
        close_logger(log)


def _categories(cfg: SceneConfig) -> list[dict[str, Any]]:
    return [{"id": i, "name": n, "supercategory": "object"} for i, n in enumerate(cfg.category_names, start=1)]


def _finalize(cfg: SceneConfig, writer: DatasetWriter, manifest: Manifest, command: str | None) -> tuple[int, int]:
    """Write annotations.json and dataset.json from every finished sample, ids in sample order."""
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for row in manifest.rows(DONE):
        if row["id"] >= cfg.count:
            continue
        for item in row["result"]:
            rec = dict(item["record"])
            rec["id"] = len(images) + 1
            images.append(rec)
            for a in item["anns"]:
                a = dict(a)
                a["image_id"] = rec["id"]
                anns.append(a)
    counts = manifest.counts()
    writer.provenance = {
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg),
        "parents": [],
    }
    writer.finalize(images, anns, {"failed_samples": counts.get(FAILED, 0), "tier": cfg.tier})
    return len(images), len(anns)
