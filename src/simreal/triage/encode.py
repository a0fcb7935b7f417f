"""Writing videos from images (PyAV): test media, demos, and turning rendered image sequences into
footage to triage."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from simreal.runtime.io import atomic_path


def encode_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0, codec: str = "libx264",
                 container: str | None = None, gop: int | None = None) -> Path:
    """Encode uint8 H x W x 3 RGB frames (all the same even size) as a video, written atomically.
    ``container`` is guessed from the suffix unless given (e.g. ``"mp4"`` for a name without one)."""
    import av

    p = Path(path)
    fmt = container or (None if p.suffix else "mp4")
    with atomic_path(p) as tmp:
        with av.open(str(tmp), "w", format=fmt or _format_of(p)) as out:
            st = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            st.pix_fmt = "yuv420p"
            if gop:
                st.codec_context.gop_size = int(gop)
            if codec == "libx264":
                st.options = {"preset": "veryfast"}
            started = False
            for arr in frames:
                if not started:
                    st.height, st.width = int(arr.shape[0]), int(arr.shape[1])
                    started = True
                for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
    return p


def _format_of(p: Path) -> str | None:
    return {".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov", ".mp4": "mp4", ".m4v": "mp4",
            ".ts": "mpegts", ".flv": "flv"}.get(p.suffix.lower())
