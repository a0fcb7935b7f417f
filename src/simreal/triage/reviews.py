"""Review marks: an investigator's verdict on frames (relevant / not relevant, and a note), kept in
``FOLDER/reviews.json`` and shown again by the viewer; the evidence trail as CSV with time links.

A mark is keyed by element and frame time; it remembers the chain, model and label it was made under
(which says what "relevant" means) and the score threshold in use.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from simreal.errors import ConfigError
from simreal.runtime.io import atomic_write_json
from simreal.triage.results import cell

REVIEWS_JSON = "reviews.json"
SCHEMA = "simreal.triage.reviews/1"
MARKS = ("relevant", "not_relevant")
_lock = threading.Lock()


def mark_key(element: str, t: float) -> str:
    return f"{element}@{t:.3f}"


def load_reviews(folder: Path) -> dict[str, dict[str, Any]]:
    """Marks by key (empty when there are none yet)."""
    p = folder / REVIEWS_JSON
    if not p.is_file():
        return {}
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        raise ConfigError(f"{p}: not valid JSON (fix or remove it)") from None
    if doc.get("schema") != SCHEMA:
        raise ConfigError(f"{p}: not a simreal reviews file (schema {doc.get('schema')!r})")
    return {mark_key(m["element"], m["t"]): m for m in doc.get("marks", [])}


def save_mark(folder: Path, element: str, t: float, mark: str | None, note: str = "", chain: str | None = None,
              model: str | None = None, label: str | None = None, threshold: float | None = None) -> dict[str, Any]:
    """Set (or, with no mark and no note, remove) the mark of one frame; written atomically."""
    if mark is not None and mark not in MARKS:
        raise ConfigError(f"mark: expected one of {', '.join(MARKS)} or none, got {mark!r}")
    with _lock:
        marks = load_reviews(folder)
        key = mark_key(element, t)
        rec = {"element": element, "t": round(float(t), 6), "mark": mark, "note": note or "", "chain": chain,
               "model": model, "label": label, "threshold": threshold,
               "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        if mark is None and not note:
            marks.pop(key, None)
        else:
            marks[key] = rec
        atomic_write_json(folder / REVIEWS_JSON, {"schema": SCHEMA, "marks": sorted(
            marks.values(), key=lambda m: (m["element"], m["t"]))})
    return rec


def link_at(source: str, t: float, webpage_url: str | None = None) -> str:
    """A link that opens the media at ``t`` seconds: YouTube ``t=`` parameter, a media fragment
    ``#t=`` for other URLs, ``file://...#t=`` for local files."""
    web = webpage_url if webpage_url and webpage_url.startswith(("http://", "https://")) else None
    url = web or source
    secs = max(0, int(t))
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        host = parts.netloc.lower()
        if "youtube.com" in host or "youtu.be" in host:
            q = [(k, v) for k, v in parse_qsl(parts.query) if k != "t"] + [("t", f"{secs}s")]
            return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), ""))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, f"t={t:.3f}"))
    if "://" in url:  # another scheme (javascript:, data:, ...) is never a link
        return ""
    return Path(source).resolve().as_uri() + f"#t={t:.3f}"


def clock(t: float) -> str:
    s = int(t)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}.{int(round((t - s) * 1000)):03d}"


def reviewed_csv(folder: Path, results: dict[str, dict[str, Any]]) -> str:
    """CSV of the marked frames: element, title, source, time, link at that time, mark, note, model,
    label and score (``results``: element id -> element result)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["element", "title", "source", "t", "time", "link", "mark", "note", "model", "label", "score",
                "frame", "updated"])
    for m in sorted(load_reviews(folder).values(), key=lambda m: (m["element"], m["t"])):
        r = results.get(m["element"], {})
        score = ""
        frame = ""
        for f in r.get("frames", []):
            if abs(f["t"] - m["t"]) < 1e-3:
                frame = f.get("file") or ""
                sc = f.get("scores", {}).get(m.get("model") or "", {})
                if m.get("label") in sc:
                    score = f"{sc[m['label']]:.6f}"
        src = r.get("source", "")
        w.writerow([m["element"], cell(r.get("title") or ""), cell(src), f"{m['t']:.3f}", clock(m["t"]),
                    cell(link_at(src, m["t"], r.get("webpage_url"))) if src else "", m.get("mark") or "",
                    cell(m.get("note", "")),
                    m.get("model") or "", m.get("label") or "", score, frame, m.get("updated", "")])
    return buf.getvalue()
