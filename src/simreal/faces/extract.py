"""``simreal faces extract``: videos / images / a camera -> frames -> dlib faces -> aligned chips,
written as a dataset in the contract (one record per chip, image-level expression labels).

Each record carries the chip's source, frame index, timestamp (s), face box ``[x, y, w, h]`` and
5 landmarks in frame pixels, the landmarks in chip pixels, the HOG score and a track id (faces
linked across frames by overlap), so one person's faces can be picked when several appear.
Frames without a face are counted, not errors. One manifest row per source: a killed extraction
rerun with the same command skips the finished sources.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from simreal.config import StrictModel
from simreal.datasets.contract import DatasetWriter
from simreal.datasets.imageio import encode_image
from simreal.faces.align import align_face
from simreal.faces.detect import DetectorConfig, FaceDetector, IouTracker
from simreal.faces.errors import FacesError
from simreal.faces.media import Frame, camera_frames, image_frames, video_frames
from simreal.faces.sources import SourceItem, collect
from simreal.runtime.io import atomic_write_bytes
from simreal.runtime.manifest import DONE, Manifest
from simreal.runtime.progress import close_logger, folder_logger, make_progress

MANIFEST = "manifest.sqlite"


class ExtractConfig(StrictModel):
    """How frames become face chips."""

    fps: float | None = Field(5.0, gt=0.0, description=(
        "Frames sampled per second of video or camera (null = every frame); image folders are read whole."))
    detector: DetectorConfig = Field(DetectorConfig(), description="Face detection settings.")
    chip_size: Literal[112, 150] = Field(112, description="Side of the aligned square chip in pixels.")
    padding: float = Field(0.3, ge=0.0, le=1.0, description=(
        "Border around dlib's 5-point template as a fraction of its size (0.3 shows brows to chin)."))
    keep: Literal["all", "largest", "longest"] = Field("all", description=(
        "Which faces to keep: all; the largest face of each frame; or only the longest track of each source "
        "(one person when several appear)."))
    track_min_iou: float = Field(0.3, gt=0.0, le=1.0, description="Box overlap (IoU) that links a face to a track.")
    track_max_gap_s: float = Field(1.0, ge=0.0, description="A track survives this many seconds without a face.")
    image_format: Literal["png", "jpg"] = Field("png", description="Chip file format (png is lossless).")
    classes: list[str] | None = Field(None, description=(
        "Class (expression) names in order; default: the labels found, sorted. Labels not listed are errors."))
    camera_seconds: float = Field(30.0, gt=0.0, description="How long to record from a camera source.")


@dataclass
class ExtractSummary:
    """What an extraction did."""

    out: Path
    sources: int
    frames: int
    frames_without_face: int
    chips: int
    tracks: int
    resumed_sources: int
    seconds: float
    empty_sources: list[str] = field(default_factory=list)
    per_source: list[dict[str, Any]] = field(default_factory=list)


def _config_key(cfg: ExtractConfig, items: list[SourceItem]) -> str:
    data = {"cfg": cfg.model_dump(mode="json"), "items": [vars(i) for i in items]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def item_frames(item: SourceItem, cfg: ExtractConfig) -> Any:
    """The frames of one source."""
    if item.kind == "video":
        return video_frames(item.path, cfg.fps, item.start, item.end)
    if item.kind == "camera":
        return camera_frames(int(item.path.split(":")[1]), cfg.fps, cfg.camera_seconds)
    return image_frames(item.path, cfg.fps or 1.0)


def estimate_frames(item: SourceItem, cfg: ExtractConfig) -> int | None:
    """About how many frames a source yields (for the progress bar)."""
    if item.kind == "images":
        p = Path(item.path)
        return 1 if p.is_file() else sum(1 for f in p.iterdir() if f.is_file())
    if item.kind == "camera":
        return int(cfg.camera_seconds * (cfg.fps or 30))
    try:
        import av

        with av.open(item.path) as c:
            s = c.streams.video[0]
            dur = float(c.duration / 1e6) if c.duration else float(s.frames / float(s.average_rate or 25))
            dur = min(dur, item.end or dur) - (item.start or 0.0)
            return max(1, int(dur * (cfg.fps or float(s.average_rate or 25))))
    except Exception:  # the real error is raised, with its message, when the video is decoded
        return None


class SourceExtractor:
    """Turns the frames of one source into chip files and records."""

    def __init__(self, detector: FaceDetector, cfg: ExtractConfig, out: Path) -> None:
        self.detector, self.cfg, self.out = detector, cfg, out

    def run(self, index: int, item: SourceItem, frames: Any, advance: Any = None) -> dict[str, Any]:
        cfg = self.cfg
        tracker = IouTracker(cfg.track_min_iou, cfg.track_max_gap_s)
        recs: list[dict[str, Any]] = []
        n_frames = n_empty = 0
        for fr in frames:
            n_frames += 1
            faces = self.detector.detect(fr.rgb)
            if cfg.keep == "largest":
                faces = faces[:1]
            if not faces:
                n_empty += 1
            ids = tracker.update(fr.t, [f.box for f in faces])
            for face, tid in zip(faces, ids, strict=True):
                recs.append(self._chip(index, item, fr, face, tid, len(recs)))
            if advance is not None:
                advance()
        if cfg.keep == "longest" and recs:
            counts: dict[str, int] = {}
            for r in recs:
                counts[r["track_id"]] = counts.get(r["track_id"], 0) + 1
            best = max(counts, key=lambda k: (counts[k], -int(k.split("t")[-1])))
            for r in recs:
                if r["track_id"] != best:
                    (self.out / r["file_name"]).unlink(missing_ok=True)
            recs = [r for r in recs if r["track_id"] == best]
        return {"records": recs, "frames": n_frames, "frames_without_face": n_empty,
                "tracks": len({r["track_id"] for r in recs})}

    def _chip(self, index: int, item: SourceItem, fr: Frame, face: Any, tid: int, k: int) -> dict[str, Any]:
        cfg = self.cfg
        al = align_face(fr.rgb, face.landmarks, cfg.chip_size, cfg.padding)
        ext = "jpg" if cfg.image_format == "jpg" else "png"
        rel = f"images/s{index:04d}_{k:06d}.{ext}"
        atomic_write_bytes(self.out / rel, encode_image(al.chip, ext), durable=False)
        x0, y0, x1, y1 = (float(v) for v in face.box)
        return {
            "file_name": rel, "width": cfg.chip_size, "height": cfg.chip_size, "domain": "real",
            "label_name": item.label, "source": fr.source, "frame_index": fr.index, "timestamp": round(fr.t, 4),
            "track_id": f"s{index}-t{tid}", "box": [x0, y0, x1 - x0, y1 - y0], "score": round(face.score, 4),
            "landmarks": face.landmarks.round(2).tolist(), "chip_landmarks": al.landmarks.round(2).tolist(),
        }


def _categories(items: list[SourceItem], cfg: ExtractConfig) -> list[dict[str, Any]]:
    found = sorted({i.label for i in items if i.label})
    names = list(cfg.classes) if cfg.classes else found
    unknown = [n for n in found if n not in names]
    if unknown:
        raise FacesError(f"labels {unknown} are not among classes {names} (extract config 'classes')")
    return [{"id": i + 1, "name": n} for i, n in enumerate(names)]


def extract_faces(inputs: list[str], out: str | Path, cfg: ExtractConfig | None = None, *, name: str | None = None,
                  domain: str = "real", quiet: bool = False, command: str = "") -> ExtractSummary:
    """Extract aligned face chips from ``inputs`` into the dataset folder ``out`` (resumable)."""
    cfg = cfg or ExtractConfig()
    items = collect(inputs)
    cats = _categories(items, cfg)
    out = Path(out)
    key = _config_key(cfg, items)
    existed = out.exists()
    if existed and (out / "dataset.json").is_file() and not (out / MANIFEST).is_file():
        raise FacesError(f"{out}: holds a dataset that is not a face extraction; use a new --out")
    detector = FaceDetector(cfg.detector)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log = folder_logger(out, "faces.extract", "extract.log")
    results: dict[int, dict[str, Any]] = {}
    with Manifest(out / MANIFEST) as man:
        old = man.get_meta("config")
        if old is not None and old != key:
            raise FacesError(f"{out}: holds an extraction with other inputs or settings; use a new --out")
        man.set_meta("config", key)
        man.ensure((i, 0) for i in range(len(items)))
        for row in man.rows(DONE):
            results[row["id"]] = row["result"]
        resumed = len(results)
        todo = [i for i in range(len(items)) if i not in results]
        log.info("extract %d sources (%d already done) into %s", len(items), resumed, out)
        ex = SourceExtractor(detector, cfg, out)
        totals = [estimate_frames(items[i], cfg) for i in todo]
        total = None if any(t is None for t in totals) else sum(totals)  # type: ignore[arg-type]
        with make_progress("frame", disable=quiet) as prog:
            bar = prog.add_task("faces", total=total)
            for i in todo:
                res = ex.run(i, items[i], item_frames(items[i], cfg), lambda: prog.advance(bar))
                man.record(i, DONE, params=vars(items[i]), result=res)
                results[i] = res
                log.info("%s: %d frames, %d without a face, %d chips", items[i].path, res["frames"],
                         res["frames_without_face"], len(res["records"]))
    summary = _finalize(out, items, results, cats, cfg, name or out.name, domain, command, resumed, t0)
    log.info("done: %d chips from %d frames (%d without a face) in %.1fs", summary.chips, summary.frames,
             summary.frames_without_face, summary.seconds)
    close_logger(log)
    if summary.chips == 0:
        if not existed:
            _remove_tree(out)
        what = items[0].path if len(items) == 1 else f"any of the {len(items)} sources"
        raise FacesError(f"{what}: no face found in {summary.frames} frames (nothing written; try "
                         "--upsample 1 or --detect-scale 1 for small faces)")
    return summary


def _finalize(out: Path, items: list[SourceItem], results: dict[int, dict[str, Any]], cats: list[dict[str, Any]],
              cfg: ExtractConfig, name: str, domain: str, command: str, resumed: int, t0: float) -> ExtractSummary:
    by_name = {c["name"]: c["id"] for c in cats}
    images, per_source = [], []
    for i, item in enumerate(items):
        res = results[i]
        for r in res["records"]:
            rec = {"id": len(images) + 1, **{k: v for k, v in r.items() if k != "label_name"}}
            rec["domain"] = domain
            rec["label"] = by_name[r["label_name"]] if r.get("label_name") else None
            images.append(rec)
        per_source.append({"source": item.path, "label": item.label, "frames": res["frames"],
                           "frames_without_face": res["frames_without_face"], "chips": len(res["records"]),
                           "tracks": res["tracks"]})
    s = ExtractSummary(out, len(items), sum(p["frames"] for p in per_source),
                       sum(p["frames_without_face"] for p in per_source), len(images),
                       sum(p["tracks"] for p in per_source), resumed, time.perf_counter() - t0,
                       [p["source"] for p in per_source if p["chips"] == 0], per_source)
    if images:
        writer = DatasetWriter(out, name, domain, cats, {"command": command, "stage": "faces extract",
                                                         "config": cfg.model_dump(mode="json")})
        writer.finalize(images, [], {"faces": {k: v for k, v in vars(s).items() if k not in ("out", "seconds")}})
    return s


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
