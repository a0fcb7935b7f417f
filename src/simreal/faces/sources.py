"""What ``simreal faces extract`` reads, in the layouts people have:

- a video file, an image file, or a folder of images (one unlabelled source: a frame sequence)
  and/or videos (one unlabelled source each);
- a labelled folder: one sub-folder per expression holding videos and/or images (the published
  students' set: one 30-second video per person per expression); each video is a source, the
  images of each sub-folder form one source;
- a CSV file with a header ``path,label`` and optional ``start,end`` (seconds of a video);
  paths are relative to the CSV's folder; an empty label means unlabelled;
- a camera index (``camera:0``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from simreal.datasets.imageio import list_images
from simreal.faces.errors import FacesError
from simreal.faces.media import is_image, is_video, parse_camera


@dataclass(frozen=True)
class SourceItem:
    """One unit of extraction: a video, an image or image folder, or a camera."""

    path: str
    kind: str  # "video" | "images" | "camera"
    label: str | None = None
    start: float | None = None
    end: float | None = None


def _media_item(p: Path, label: str | None = None) -> SourceItem:
    if p.is_file() and is_video(p):
        return SourceItem(str(p), "video", label)
    if p.is_file() and is_image(p) or p.is_dir():
        return SourceItem(str(p), "images", label)
    raise FacesError(f"{p}: not a video, an image or an image folder")


def labelled_folder(root: Path) -> list[SourceItem] | None:
    """Items of a folder with one sub-folder per expression, or None if ``root`` is not one."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    items: list[SourceItem] = []
    for d in subdirs:
        files = sorted(f for f in d.iterdir() if f.is_file())
        items += [SourceItem(str(f), "video", d.name) for f in files if is_video(f)]
        if list_images(d):
            items.append(SourceItem(str(d), "images", d.name))
    return items or None


def read_csv(path: Path) -> list[SourceItem]:
    """Items of a CSV with columns ``path,label[,start,end]``; errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FacesError(f"{path}: unreadable CSV ({exc.__class__.__name__})") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise FacesError(f"{path}: expected a header with columns path,label (optional start,end)")
    items = []
    for i, row in enumerate(rows, start=2):
        p = Path(row["path"] or "")
        p = p if p.is_absolute() else path.parent / p
        if not row["path"] or not p.exists():
            raise FacesError(f"{path}: line {i}: file {row['path']!r} not found")
        times = []
        for key in ("start", "end"):
            v = (row.get(key) or "").strip()
            try:
                times.append(float(v) if v else None)
            except ValueError:
                raise FacesError(f"{path}: line {i}: {key} {v!r} is not a number of seconds") from None
        item = _media_item(p, (row["label"] or "").strip() or None)
        items.append(SourceItem(item.path, item.kind, item.label, times[0], times[1]))
    return items


def collect(inputs: list[str]) -> list[SourceItem]:
    """The sources named by ``inputs`` (files, folders, CSVs, camera indices), in order."""
    items: list[SourceItem] = []
    for spec in inputs:
        p = Path(spec)
        cam = parse_camera(spec)
        if cam is not None and not p.exists():
            items.append(SourceItem(f"camera:{cam}", "camera"))
        elif not p.exists():
            raise FacesError(f"{p}: not found (expected a video, image, image folder, labelled folder, CSV "
                             "or camera:N)")
        elif p.is_file() and p.suffix.lower() == ".csv":
            items += read_csv(p)
        elif p.is_dir():
            labelled = labelled_folder(p)
            videos = [SourceItem(str(f), "video") for f in sorted(p.iterdir()) if f.is_file() and is_video(f)]
            images = [SourceItem(str(p), "images")] if list_images(p) else []
            if labelled is None and not videos and not images:
                raise FacesError(f"{p}: no images, videos or per-expression sub-folders found")
            items += (labelled or []) + videos + images
        else:
            items.append(_media_item(p))
    if not items:
        raise FacesError("no input given (videos, image folders, a labelled folder, a CSV or camera:N)")
    return items
