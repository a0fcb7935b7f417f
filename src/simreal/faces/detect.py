"""Face detection (dlib HOG, optionally on a downscaled frame) and 5-point landmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydantic import Field

from simreal.config import StrictModel
from simreal.datasets.coco import xywh_iou
from simreal.faces.dlibmodels import hog_detector, import_dlib, shape_predictor


class DetectorConfig(StrictModel):
    """How faces are found in a frame."""

    upsample: int = Field(0, ge=0, le=3, description=(
        "Times dlib's HOG detector upsamples the (scaled) frame; each step halves the smallest face found "
        "(0: faces of ~80 px at the detection scale, 1: ~40 px) and costs ~4x the time."))
    detect_scale: float = Field(0.5, gt=0.0, le=2.0, description=(
        "Detect on the frame resized by this factor (0.5 = half size, ~4x faster); boxes are mapped back "
        "to the full frame and landmarks are found there."))
    threshold: float = Field(0.0, ge=-2.0, le=3.0, description=(
        "dlib's adjust_threshold: detections need a HOG score above it (higher = fewer, surer faces)."))
    min_size: int = Field(40, ge=0, description="Faces whose box side is below this (frame pixels) are dropped.")
    max_faces: int = Field(0, ge=0, description="Keep at most this many faces per frame, largest first (0 = all).")


@dataclass
class Face:
    """A detected face: box (x0, y0, x1, y1) and 5 landmarks (x, y) in frame pixels, HOG score."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def size(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceDetector:
    """dlib HOG detection + 5-point landmarks, configured by :class:`DetectorConfig`."""

    def __init__(self, cfg: DetectorConfig | None = None, landmark_model: str | None = None) -> None:
        self.cfg = cfg or DetectorConfig()
        self.dlib = import_dlib()
        self.detector = hog_detector()
        self.predictor = shape_predictor(landmark_model)

    def boxes(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Face boxes (frame pixels, x0 y0 x1 y1) with their HOG scores, largest first."""
        s = self.cfg.detect_scale
        img = np.ascontiguousarray(rgb)
        if abs(s - 1.0) > 1e-9:
            h, w = img.shape[:2]
            size = (max(1, round(w * s)), max(1, round(h * s)))
            img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))
            sx, sy = w / size[0], h / size[1]
        else:
            sx = sy = 1.0
        rects, scores, _ = self.detector.run(img, self.cfg.upsample, self.cfg.threshold)
        out = []
        for r, sc in zip(rects, scores, strict=True):
            # dlib rectangles are inclusive pixel ranges: map their edges, not their corner pixels
            box = np.array([r.left() * sx, r.top() * sy, (r.right() + 1) * sx - 1, (r.bottom() + 1) * sy - 1])
            if min(box[2] - box[0], box[3] - box[1]) >= self.cfg.min_size:
                out.append((box, float(sc)))
        out.sort(key=lambda b: -(b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))
        return out[: self.cfg.max_faces] if self.cfg.max_faces else out

    def landmarks(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The 5 landmarks (5, 2) of the face in ``box`` (frame pixels)."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self.predictor(np.ascontiguousarray(rgb), self.dlib.rectangle(x0, y0, x1, y1))
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Every face in an RGB (or grey) uint8 frame, largest first."""
        return [Face(box, score, self.landmarks(rgb, box)) for box, score in self.boxes(rgb)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xyxy boxes."""
    return xywh_iou([a[0], a[1], a[2] - a[0], a[3] - a[1]], [b[0], b[1], b[2] - b[0], b[3] - b[1]])


class IouTracker:
    """Links faces across frames by box overlap: a face joins the unmatched track it overlaps most
    (IoU >= ``min_iou``) among tracks seen within ``max_gap_s`` seconds, else starts a new track.
    Matching is greedy by IoU over all (track, face) pairs of a frame."""

    def __init__(self, min_iou: float = 0.3, max_gap_s: float = 1.0) -> None:
        self.min_iou, self.max_gap_s = min_iou, max_gap_s
        self.tracks: dict[int, tuple[np.ndarray, float]] = {}  # id -> (last box, last time)
        self.next_id = 0

    def update(self, t: float, boxes: list[np.ndarray]) -> list[int]:
        """Track ids of ``boxes`` seen at time ``t`` (seconds)."""
        live = {k: v for k, v in self.tracks.items() if t - v[1] <= self.max_gap_s}
        pairs = sorted(((iou(tb, b), k, j) for k, (tb, _) in live.items() for j, b in enumerate(boxes)), reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for v, k, j in pairs:
            if v < self.min_iou:
                break
            if k in used or ids[j] is not None:
                continue
            ids[j] = k
            used.add(k)
        for j, b in enumerate(boxes):
            if ids[j] is None:
                ids[j] = self.next_id
                self.next_id += 1
            self.tracks[int(ids[j])] = (b, t)  # type: ignore[arg-type]
        return [int(i) for i in ids]  # type: ignore[arg-type]
