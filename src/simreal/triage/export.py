"""Review marks become data: the frames an investigator marked, written as a labelled real dataset in
the simreal contract (``simreal train`` takes it for fine-tuning or as a labelled real validation set).

A frame marked relevant gets the label it was reviewed under as its image-level label, plus that
label's detector boxes scoring at least the review threshold; a frame marked not relevant is a
negative (label 0, the ``background`` class of classification).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from simreal.datasets.contract import DatasetWriter
from simreal.errors import ConfigError
from simreal.runtime.io import atomic_dir
from simreal.triage.frames import frame_at, jpeg_roundtrip, open_image
from simreal.triage.results import load_elements, resolve_chain
from simreal.triage.reviews import MARKS, load_reviews
from simreal.triage.selectors import media_path


def _frame_bytes(folder: Path, r: dict[str, Any], f: dict[str, Any]) -> bytes:
    """The frame's JPEG: the kept file, or (frames dropped) the same frame decoded again and encoded
    as the Frames stage did, so the bytes are the ones a kept frame would have had."""
    if f.get("file") and (folder / f["file"]).is_file():
        return (folder / f["file"]).read_bytes()
    media = media_path({"path": r["media"]}, folder)
    if not media.is_file():
        raise ConfigError(f"{media}: media of element {r['element']} is gone and its frame was not kept")
    from simreal.triage.config import FramesConfig

    cfg = FramesConfig.model_validate(r.get("sampling") or {})
    img = open_image(media, cfg.max_side) if r["kind"] == "image" else frame_at(media, f["t"], cfg)
    return jpeg_roundtrip(img, cfg.jpeg_quality)[0]


def export_reviewed(folder: str | Path, out: str | Path, chain: str | None = None) -> dict[str, Any]:
    """Write the marked frames of ``folder`` as a dataset at ``out``; returns the dataset info."""
    folder, out = Path(folder), Path(out)
    marks = [m for m in load_reviews(folder).values() if m.get("mark") in MARKS]
    if not marks:
        raise ConfigError(f"{folder}: no review marks to export (mark frames relevant / not relevant in "
                          "simreal view first)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out: {out} exists and is not empty (choose a new folder)")
    default = resolve_chain(folder, chain)["id"]
    by_chain: dict[str, dict[str, dict[str, Any]]] = {}

    def result(cid: str, eid: str) -> dict[str, Any] | None:
        if cid not in by_chain:
            by_chain[cid] = {r["element"]: r for r in load_elements(folder, cid)}
        return by_chain[cid].get(eid)

    names = sorted({m.get("label") or "object" for m in marks if m["mark"] == "relevant"})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    with atomic_dir(out) as tmp:  # the dataset appears complete or not at all
        return _write(folder, tmp, out.name, marks, cats, default, chain, result)


def _write(folder: Path, root: Path, name: str, marks: list[dict[str, Any]], cats: list[dict[str, Any]],
           default: str, chain: str | None,
           result: Callable[[str, str], dict[str, Any] | None]) -> dict[str, Any]:
    """The marked frames and their boxes written into ``root`` (a temporary folder)."""
    cid_of = {c["name"]: c["id"] for c in cats}
    writer = DatasetWriter(root, name, "real", cats, {
        "command": "simreal triage export --reviewed", "triage_folder": str(folder.resolve())})
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    missing = []
    for m in sorted(marks, key=lambda m: (m["element"], m["t"])):
        cid = m.get("chain") if m.get("chain") and not chain else default
        r = result(cid, m["element"]) or result(default, m["element"])
        f = next((f for f in (r or {}).get("frames", []) if abs(f["t"] - m["t"]) < 1e-3), None)
        if r is None or f is None:
            missing.append(f"{m['element']}@{m['t']:.3f}")
            continue
        data = _frame_bytes(folder, r, f)
        name = writer.write_file(f"images/{m['element']}_{int(round(m['t'] * 1000)):09d}.jpg", data)
        iid = len(images) + 1
        relevant = m["mark"] == "relevant"
        label = m.get("label") or "object"
        w, h = r.get("width"), r.get("height")
        images.append({"id": iid, "file_name": name, "width": w, "height": h, "domain": "real",
                       "label": cid_of[label] if relevant else 0,
                       "triage": {"element": m["element"], "t": m["t"], "source": r["source"], "chain": r["chain"],
                                  "model": m.get("model"), "label": m.get("label"), "mark": m["mark"],
                                  "note": m.get("note", "")}})
        if relevant and m.get("model"):
            thr = m.get("threshold") if m.get("threshold") is not None else 0.5
            for b in f.get("boxes", {}).get(m["model"], []):
                if b["label"] != m.get("label") or b["score"] < thr:
                    continue
                x1, y1, x2, y2 = b["box"]
                x1, y1 = max(0.0, x1), max(0.0, y1)
                x2, y2 = min(float(w or x2), x2), min(float(h or y2), y2)
                if x2 <= x1 or y2 <= y1:
                    continue
                anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": cid_of[label],
                             "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                             "area": round((x2 - x1) * (y2 - y1), 2), "iscrowd": 0, "score": b["score"]})
    if not images:
        raise ConfigError(f"{folder}: none of the {len(marks)} marked frames is in the results "
                          f"(e.g. {missing[0]})")
    info = writer.finalize(images, anns, {"triage": {"marks": len(marks), "missing": missing}})
    return info
