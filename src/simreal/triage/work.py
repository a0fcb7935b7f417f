"""The per-element work that runs in decoding workers: Frames (+ Dedup) and model-input preparation.

:func:`element_messages` is a pure generator over one job (plain data in, messages out) so it runs the
same in this process, in a local worker process or as a Ray task. Messages (tuples):

- ``("start", eid, pid)``
- ``("chunk", eid, [(frame index, {input spec key: uint8 array}), ...])`` — frames for the scorers,
  streamed while the video is still being decoded
- ``("frames", eid, frames.json content, written)`` / ``("dedup", eid, dedup output, written)``
- ``("end", eid, frames sent)`` or ``("error", eid, stage, reason)``

Frame files are written into a temporary folder renamed into place at the end, so a frames output
folder is always complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from simreal.runtime.io import atomic_write_json
from simreal.triage.config import DedupConfig, FramesConfig
from simreal.triage.dedup import Deduper
from simreal.triage.frames import MediaError, VideoSampler, jpeg_roundtrip, open_image
from simreal.triage.scoring import InputSpec, prepare
from simreal.triage.store import TMP_MARK

FRAMES_SCHEMA = "simreal.triage.frames/1"
FRAMES_JSON = "frames.json"


def frame_file(i: int) -> str:
    return f"{i:06d}.jpg"


def read_frames_meta(folder: Path, need_images: bool) -> dict[str, Any] | None:
    """A complete frames output (frames.json and, when ``need_images``, every JPEG), or None."""
    p = folder / FRAMES_JSON
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("schema") != FRAMES_SCHEMA:
        return None
    if need_images:
        if not meta.get("images"):
            return None
        present = {e.name for e in os.scandir(folder)}
        if any(f["file"] not in present for f in meta["frames"]):
            return None
    return meta


def _samples(job: dict[str, Any], info: dict[str, Any]) -> Iterator[tuple[float, Image.Image]]:
    cfg = FramesConfig.model_validate(job["frames"])
    if job["kind"] == "image":
        img = open_image(job["path"], cfg.max_side)
        info.update(duration=None, width=img.width, height=img.height, native_fps=None, codec="image", decoded=1)
        yield 0.0, img
        return
    with VideoSampler(job["path"], cfg, threads=job.get("threads", 1)) as s:
        info.update(duration=s.info.duration, width=s.info.width, height=s.info.height,
                    native_fps=s.info.native_fps, codec=s.info.codec)
        for t, img in s:
            yield t, img
        info.update(decoded=s.info.decoded, seeks=s.info.seeks, width=s.info.width, height=s.info.height)


def element_messages(job: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Do one element's frame work (see the module docstring)."""
    eid = job["eid"]
    yield ("start", eid, os.getpid())
    specs = [InputSpec(tuple(s["size"]), s["channels"], s.get("resize_short"),  # type: ignore[arg-type]
                       tuple(s["mean"]) if s.get("mean") else None, tuple(s["std"]) if s.get("std") else None)
             for s in job["specs"]]
    chunk_size = int(job.get("chunk", 16))
    final = Path(job["frames_dir"])
    dedup_cfg = DedupConfig.model_validate(job["dedup"]) if job.get("dedup") else None
    stage = "frames"
    t0 = time.perf_counter()
    sent = 0
    chunk: list[tuple[int, dict[str, Any]]] = []
    tmp: Path | None = None
    try:
        meta = read_frames_meta(final, need_images=True) if job["frames_done"] else None
        dedup_done = job.get("dedup_out") if dedup_cfg is not None else None
        deduper = Deduper(dedup_cfg) if dedup_cfg is not None and dedup_done is None else None
        kept = set(dedup_done["kept"]) if dedup_done else None
        need_pixels = bool(specs) or deduper is not None
        if meta is not None:  # frames on disk: read them back (only what is still needed)
            frames_iter: Iterator[tuple[int, float, Image.Image | None]] = _from_disk(final, meta, need_pixels,
                                                                                      kept if deduper is None else None)
        else:
            tmp = final.parent / f".{final.name}{TMP_MARK}{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            meta = {"schema": FRAMES_SCHEMA, "element": eid, "kind": job["kind"], "images": bool(job["write_images"]),
                    "frames": []}
            frames_iter = _decode(job, tmp, meta)
        stage = "frames"
        for i, _t, img in frames_iter:
            keep_it = True
            if deduper is not None and img is not None:
                stage = "dedup"
                keep_it = deduper.add(i, img)
                stage = "frames"
            elif kept is not None:
                keep_it = i in kept
            if keep_it and specs and img is not None:
                chunk.append((i, {s.key: prepare(img, s) for s in specs}))
                if len(chunk) >= chunk_size:
                    sent += len(chunk)
                    yield ("chunk", eid, chunk)
                    chunk = []
        if chunk:
            sent += len(chunk)
            yield ("chunk", eid, chunk)
        if tmp is not None:
            meta["seconds"] = round(time.perf_counter() - t0, 4)
            atomic_write_json(tmp / FRAMES_JSON, meta, indent=None)
            if final.exists():  # an older output without images (keep_frames: false)
                old = final.parent / f".{final.name}{TMP_MARK}old{os.getpid()}"
                os.replace(final, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, final)
        yield ("frames", eid, meta, tmp is not None)
        if deduper is not None:
            stage = "dedup"
            out = deduper.result()
            atomic_write_json(job["dedup_path"], out, indent=None)
            yield ("dedup", eid, out, True)
        elif dedup_done is not None:
            yield ("dedup", eid, dedup_done, False)
        yield ("end", eid, sent)
    except MediaError as exc:
        _remove(tmp)
        yield ("error", eid, stage, str(exc).removeprefix(f"{job['path']}: "))
    except Exception as exc:  # one bad element must not stop the run
        _remove(tmp)
        yield ("error", eid, stage, f"{type(exc).__name__}: {exc}"[:500])


def _remove(tmp: Path | None) -> None:
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def _decode(job: dict[str, Any], tmp: Path, meta: dict[str, Any]) -> Iterator[tuple[int, float, Image.Image]]:
    quality = FramesConfig.model_validate(job["frames"]).jpeg_quality
    info: dict[str, Any] = {}
    for i, (t, img) in enumerate(_samples(job, info)):
        data, back = jpeg_roundtrip(img, quality)
        name = frame_file(i)
        if job["write_images"]:
            with open(tmp / name, "wb") as fh:
                fh.write(data)
        meta["frames"].append({"i": i, "t": round(t, 6), "file": name})
        yield i, t, back
    meta.update(info)
    if not meta["frames"]:
        raise MediaError(f"{job['path']}: no frame in the sampled range (duration {info.get('duration')})")


def _from_disk(folder: Path, meta: dict[str, Any], need_pixels: bool,
               only: set[int] | None) -> Iterator[tuple[int, float, Image.Image | None]]:
    for f in meta["frames"]:
        if only is not None and f["i"] not in only:
            continue
        img = None
        if need_pixels:
            with Image.open(folder / f["file"]) as im:
                img = im.convert("RGB")
        yield f["i"], f["t"], img
