"""Frames from a video file (PyAV), an image folder or a single image, or a camera (PyAV's
``v4l2`` input), sampled at a chosen rate, each with its timestamp in seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simreal.datasets.imageio import IMAGE_EXTS, list_images, read_image
from simreal.faces.errors import FacesError

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass
class Frame:
    """One frame: where it came from, its index in the source, its time (s) and RGB pixels."""

    source: str
    index: int
    t: float
    rgb: np.ndarray


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise FacesError("PyAV is not installed: install the faces extra: pip install 'simreal[faces]'") from None
    return av


class _RateGate:
    """Keeps frames at ``fps`` (None = every frame) by their timestamps."""

    def __init__(self, fps: float | None) -> None:
        self.step = None if not fps else 1.0 / fps
        self.next_t: float | None = None

    def keep(self, t: float) -> bool:
        if self.step is None:
            return True
        if self.next_t is None:
            self.next_t = t
        if t + 1e-6 < self.next_t:
            return False
        while self.next_t <= t + 1e-6:
            self.next_t += self.step
        return True


def video_frames(path: str | Path, fps: float | None = None, start: float | None = None,
                 end: float | None = None) -> Iterator[Frame]:
    """Decoded frames of a video file at ``fps`` frames per second (None = all), between
    ``start`` and ``end`` seconds."""
    av = _import_av()
    p = Path(path)
    if not p.is_file():
        raise FacesError(f"{p}: video file not found")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError) as exc:
        raise FacesError(f"{p}: not a readable video ({exc})") from None
    with container:
        if not container.streams.video:
            raise FacesError(f"{p}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.base_rate or 25.0)
        gate = _RateGate(fps)
        try:
            for i, fr in enumerate(container.decode(stream)):
                t = float(fr.time) if fr.time is not None else i / rate
                if start is not None and t < start:
                    continue
                if end is not None and t > end:
                    break
                if gate.keep(t):
                    yield Frame(str(p), i, t, fr.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise FacesError(f"{p}: video could not be decoded ({exc})") from None


def image_frames(path: str | Path, fps: float = 1.0) -> Iterator[Frame]:
    """An image file, or the images of a folder in name order (frame i at time i / ``fps``)."""
    p = Path(path)
    files = [p] if p.is_file() else list_images(p)
    if not files:
        raise FacesError(f"{p}: no images found (expected {', '.join(IMAGE_EXTS)} files)")
    for i, f in enumerate(files):
        yield Frame(str(f), i, i / fps, read_image(f, "RGB"))


def camera_frames(index: int, fps: float | None = None, seconds: float | None = None,
                  size: tuple[int, int] | None = None) -> Iterator[Frame]:
    """Frames of camera ``index`` (``/dev/videoN`` through PyAV's v4l2 input) for ``seconds``
    (None = until interrupted), optionally at ``size`` (W, H)."""
    av = _import_av()
    dev = f"/dev/video{index}"
    opts = {"video_size": f"{size[0]}x{size[1]}"} if size else {}
    try:
        container = av.open(dev, format="v4l2", options=opts)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise FacesError(f"camera {index}: could not be opened ({dev}: {exc})") from None
    with container:
        gate, t0 = _RateGate(fps), time.monotonic()
        for i, fr in enumerate(container.decode(video=0)):
            t = time.monotonic() - t0
            if seconds is not None and t > seconds:
                break
            if gate.keep(t):
                yield Frame(f"camera:{index}", i, t, fr.to_ndarray(format="rgb24"))


def parse_camera(spec: str) -> int | None:
    """``"0"`` or ``"camera:0"`` -> 0; anything else -> None."""
    s = spec.removeprefix("camera:")
    return int(s) if s.isdigit() else None
