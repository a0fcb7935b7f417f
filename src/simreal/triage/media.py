"""What a file is: video, image or neither — by extension, else by its first bytes (content sniffing)."""

from __future__ import annotations

from pathlib import Path

VIDEO_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".flv", ".wmv",
              ".3gp", ".ogv")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
_STILL_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")  # ISO-BMFF still images PIL cannot read


def sniff(head: bytes) -> str | None:
    """``"video"``, ``"image"`` or None from a file's first bytes (at least 200 for MPEG-TS)."""
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n") or head[:6] in (b"GIF87a",
                                                                                                b"GIF89a"):
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*") or (head.startswith(b"BM") and len(head) >= 14):
        return "image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] in _MP4_BOXES:
        return None if head[4:8] == b"ftyp" and head[8:12] in _STILL_BRANDS else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3") or head.startswith(b"FLV") or head.startswith(b"OggS"):
        return "video"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "video"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):  # ASF / WMV
        return "video"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:  # MPEG-TS packets
        return "video"
    return None


def media_kind(path: Path, extensions: tuple[str, ...] | None = None, sniff_content: bool = True) -> str | None:
    """The kind of ``path``: by extension when it has a known one, else (``sniff_content``) by its bytes."""
    ext = path.suffix.lower()
    if extensions is not None:
        if ext not in extensions:
            return None
        if ext in VIDEO_EXTS:
            return "video"
        if ext in IMAGE_EXTS:
            return "image"
    elif ext in VIDEO_EXTS:
        return "video"
    elif ext in IMAGE_EXTS:
        return "image"
    if not sniff_content:
        return None
    try:
        with open(path, "rb") as fh:
            return sniff(fh.read(256))
    except OSError:
        return None
