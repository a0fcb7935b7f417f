"""Triage outputs: one versioned JSON per element, plus chain-level CSV, ranking and summary files.

Layout under ``FOLDER/results/<chain id>/``: ``chain.json`` (config, stage keys, models),
``elements/<element id>.json`` (schema ``simreal.triage.element/1``, see docs/triage.md and
``schema/element-1.json``), ``frames.csv``, ``ranking.json`` / ``ranking.csv`` and ``summary.json``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simreal.errors import ConfigError
from simreal.runtime.io import atomic_write_json, atomic_write_text

ELEMENT_SCHEMA = "simreal.triage.element/1"
SCORES_SCHEMA = "simreal.triage.scores/1"
CHAIN_SCHEMA = "simreal.triage.chain/1"
META_KEYS = ("title", "description", "upload_date", "webpage_url", "uploader", "modified")


def chain_dir(folder: Path, chain: str) -> Path:
    return folder / "results" / chain


def assemble(element: dict[str, Any], frames_meta: dict[str, Any], frames_rel: str, dedup: dict[str, Any] | None,
             scores: dict[str, dict[str, Any]], models: dict[str, dict[str, Any]], chain: str,
             sampling: dict[str, Any]) -> dict[str, Any]:
    """An element's result document from its stage outputs (``scores``: model name -> score output)."""
    kept = set(dedup["kept"]) if dedup is not None else None
    dups: dict[int, int] = {}
    if dedup is not None:
        for k, j in dedup["dup_of"].items():
            if kept is not None and int(k) not in kept:  # with dry: true duplicates stay frames of their own
                dups[int(j)] = dups.get(int(j), 0) + 1
    frames = []
    for f in frames_meta["frames"]:
        i = f["i"]
        if kept is not None and i not in kept:
            continue
        rec: dict[str, Any] = {"i": i, "t": f["t"],
                               "file": f"{frames_rel}/{f['file']}" if frames_meta.get("images") else None,
                               "dups": dups.get(i, 0), "scores": {}, "boxes": {}}
        for name, out in scores.items():
            fs = out["frames"].get(str(i))
            if fs is None:
                continue
            labels = out["labels"]
            rec["scores"][name] = {lab: float(v) for lab, v in zip(labels, fs["s"], strict=True)}
            if fs.get("b"):
                rec["boxes"][name] = [{"label": labels[int(b[5])], "score": float(b[4]),
                                       "box": [float(v) for v in b[:4]]} for b in fs["b"]]
        if not rec["boxes"]:
            del rec["boxes"]
        frames.append(rec)
    return {
        "schema": ELEMENT_SCHEMA, "chain": chain, "element": element["id"], "kind": element["kind"],
        "source": element["source"], "media": element["path"],
        **{k: element.get(k) for k in META_KEYS},
        "duration": frames_meta.get("duration") or element.get("duration"),
        "width": frames_meta.get("width"), "height": frames_meta.get("height"),
        "native_fps": frames_meta.get("native_fps"), "codec": frames_meta.get("codec"),
        "sampling": sampling, "sampled": len(frames_meta["frames"]),
        "models": {name: models[name] for name in scores},
        "frames": frames,
    }


def write_element(folder: Path, chain: str, result: dict[str, Any]) -> Path:
    p = chain_dir(folder, chain) / "elements" / f"{result['element']}.json"
    atomic_write_json(p, result, indent=None)
    return p


def _json_or_none(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def list_chains(folder: Path) -> list[dict[str, Any]]:
    """Chains with results in ``folder``, newest first."""
    out = []
    root = folder / "results"
    if root.is_dir():
        for d in root.iterdir():
            p = d / "chain.json"
            if p.is_file():
                try:
                    out.append(json.loads(p.read_text(encoding="utf-8")))
                except ValueError:
                    continue
    out.sort(key=lambda c: c.get("updated", ""), reverse=True)
    return out


def resolve_chain(folder: Path, chain: str | None) -> dict[str, Any]:
    """The chain called (or starting with) ``chain``, or the most recently run one."""
    if not (folder / "results").is_dir() and not (folder / "triage.sqlite").is_file():
        raise ConfigError(f"{folder}: not a triage folder (no results/ or triage.sqlite)")
    chains = list_chains(folder)
    if not chains:
        raise ConfigError(f"{folder}: no triage results yet (run simreal triage run first)")
    if chain is None:
        return chains[0]
    hits = [c for c in chains if c["id"].startswith(chain)]
    if len(hits) != 1:
        raise ConfigError(f"--chain: {chain!r} matches {len(hits)} chains in {folder} "
                          f"({', '.join(c['id'] for c in chains)})")
    return hits[0]


def load_elements(folder: Path, chain: str) -> list[dict[str, Any]]:
    """Every element result of a chain, in file-name order."""
    d = chain_dir(folder, chain) / "elements"
    out = []
    if d.is_dir():
        for p in sorted(d.glob("*.json")):
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except ValueError:
                continue
    return out


def cell(v: Any) -> Any:
    """A CSV cell safe to open in a spreadsheet: untrusted text starting like a formula is quoted."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def frames_csv(results: list[dict[str, Any]]) -> str:
    """One row per (frame, model, label): element, title, source, time, frame file, score, boxes."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["element", "title", "source", "kind", "t", "file", "model", "label", "score", "boxes"])
    for r in results:
        for f in r["frames"]:
            for model, sc in f["scores"].items():
                boxes = f.get("boxes", {}).get(model, [])
                for label, v in sc.items():
                    nb = sum(1 for b in boxes if b["label"] == label)
                    w.writerow([r["element"], cell(r.get("title") or ""), cell(r["source"]), r["kind"], f"{f['t']:.3f}",
                                f.get("file") or "", model, label, f"{v:.6f}", nb])
    return buf.getvalue()


def ranking_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["rank", "element", "title", "source", "kind", "value", "count", "max", "topk-mean", "fraction",
            "frames", "best_t"]
    w.writerow(cols)
    for r in rows:
        w.writerow([cell(r.get(c)) if r.get(c) is not None else "" for c in cols])
    return buf.getvalue()


INDEX_KEYS = ("element", "title", "kind", "duration", "source")


@dataclass
class ChainIndex:
    """Every element of a chain in flat arrays (no per-frame dicts): what ranking and the viewer's lists
    need, loaded in milliseconds for thousands of videos. Element e owns frames
    ``[offsets[e], offsets[e + 1])``; ``scores[(model, label)]`` is NaN where a frame has no score."""

    elements: list[dict[str, Any]]
    offsets: np.ndarray
    t: np.ndarray
    i: np.ndarray
    dups: np.ndarray
    scores: dict[tuple[str, str], np.ndarray]
    _series: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, results: list[dict[str, Any]]) -> ChainIndex:
        els, t, i, dups, offsets = [], [], [], [], [0]
        keys: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for r in results:
            frames = r.get("frames", [])
            files = next((f["file"] for f in frames if f.get("file")), None)
            els.append({**{k: r.get(k) for k in INDEX_KEYS}, "fps": (r.get("sampling") or {}).get("fps"),
                        "frames_dir": files.rsplit("/", 1)[0] if files else None})
            for f in frames:
                n = len(t)
                t.append(f["t"])
                i.append(f["i"])
                dups.append(int(f.get("dups", 0)))
                for model, sc in f.get("scores", {}).items():
                    for label, v in sc.items():
                        keys.setdefault((model, label), []).append((n, v))
            offsets.append(len(t))
        scores = {}
        for key, pairs in keys.items():
            arr = np.full(len(t), np.nan)
            idx, vals = zip(*pairs, strict=True)
            arr[list(idx)] = vals
            scores[key] = arr
        return cls(els, np.asarray(offsets, np.int64), np.asarray(t, np.float64), np.asarray(i, np.int64),
                   np.asarray(dups, np.int64), scores)

    def series(self, model: str, label: str) -> Any:
        """The :class:`~simreal.triage.ranking.Series` of one model/label (cached with its sort)."""
        from simreal.triage.ranking import Series

        key = (model, label)
        if key not in self._series:
            s = self.scores.get(key, np.full(len(self.t), np.nan))
            self._series[key] = Series(self.offsets, self.t, s, 1.0 + self.dups)
        return self._series[key]

    def save(self, path: Path, stamp: int) -> None:
        arrays = {"offsets": self.offsets, "t": self.t, "i": self.i, "dups": self.dups}
        labels = []
        for n, (key, arr) in enumerate(self.scores.items()):
            arrays[f"s{n}"] = arr.astype(np.float32)
            labels.append(list(key))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        from simreal.runtime.io import atomic_write_bytes

        atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue(), durable=False)
        atomic_write_json(path.with_suffix(".json"), {"schema": "simreal.triage.index/1", "stamp": stamp,
                                                      "labels": labels, "elements": self.elements}, indent=None)

    @classmethod
    def load(cls, path: Path, stamp: int) -> ChainIndex | None:
        """The saved index if it was written for this state of the elements folder, else None."""
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            if meta.get("schema") != "simreal.triage.index/1" or meta.get("stamp") != stamp:
                return None
            with np.load(path.with_suffix(".npz")) as z:
                scores = {(m, lab): z[f"s{n}"].astype(np.float64) for n, (m, lab) in enumerate(meta["labels"])}
                return cls(meta["elements"], z["offsets"], z["t"], z["i"], z["dups"], scores)
        except (OSError, ValueError, KeyError):
            return None


def elements_stamp(folder: Path, chain: str) -> int:
    """Changes whenever an element result is added or replaced (the folder's mtime)."""
    d = chain_dir(folder, chain) / "elements"
    return d.stat().st_mtime_ns if d.is_dir() else 0


def chain_index(folder: Path, chain: str) -> ChainIndex:
    """The chain's index: the saved one when current, else built from the element results."""
    stamp = elements_stamp(folder, chain)
    return ChainIndex.load(chain_dir(folder, chain) / "index", stamp) or ChainIndex.build(load_elements(folder, chain))


def write_chain_outputs(folder: Path, chain_meta: dict[str, Any], summary: dict[str, Any]) -> dict[str, Path]:
    """chain.json, summary.json, frames.csv, the index and the ranking of the chain's Rank settings."""
    from simreal.triage.ranking import check_target, rank

    d = chain_dir(folder, chain_meta["id"])
    stamp = elements_stamp(folder, chain_meta["id"])
    old = _json_or_none(d / "chain.json") or {}
    current = (_json_or_none(d / "index.json") or {}).get("stamp") == stamp and old.get("rank") == chain_meta["rank"]
    paths = {"chain": atomic_write_json(d / "chain.json", chain_meta),
             "summary": atomic_write_json(d / "summary.json", summary)}
    if current and (d / "frames.csv").is_file():  # no element changed since they were written: keep them
        return paths
    results = load_elements(folder, chain_meta["id"])
    ChainIndex.build(results).save(d / "index", stamp)
    paths["frames_csv"] = atomic_write_text(d / "frames.csv", frames_csv(results))
    if chain_meta["models"]:
        rk = chain_meta["rank"]
        model, label = check_target(chain_meta["models"], None, None)
        rows = rank(results, model, label, rk["by"], rk["threshold"], rk["k"])
        doc = {"model": model, "label": label, **rk, "elements": rows}
        paths["ranking"] = atomic_write_json(d / "ranking.json", doc)
        paths["ranking_csv"] = atomic_write_text(d / "ranking.csv", ranking_csv(rows))
    return paths
