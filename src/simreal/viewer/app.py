"""The review viewer's web app (FastAPI): a static page plus a small JSON API over one triage folder.

It reads only the folder (results, frames, reviews) and writes only ``reviews.json``. Files are served
from inside the folder and nowhere else: ``..``, absolute paths, and symlinks that leave the folder
are 404. The one exception is an element's own media file (``/media/<element id>``), looked up by id
among the folder's registered elements, so a local video can be played from a frame's time; no path
from the request is ever used for it (``serve_sources=False`` turns that off).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from simreal.errors import SimrealError
from simreal.triage.ranking import METRICS, check_target, metrics, order
from simreal.triage.results import ChainIndex, chain_index, elements_stamp, list_chains, load_elements, resolve_chain
from simreal.triage.reviews import MARKS, link_at, load_reviews, reviewed_csv, save_mark
from simreal.triage.selectors import media_path
from simreal.triage.store import Store

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self'; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")
SERVABLE = ("stages", "media")  # sub-folders whose files may be served
SORT_KEYS = (*METRICS, "title", "duration", "frames")
ELEMENT_ID = re.compile(r"^[0-9a-f]{16}$")


def safe_file(folder: Path, rel: str) -> Path | None:
    """The regular file ``folder/rel`` if it lies inside ``folder`` (after resolving symlinks) under one
    of the servable sub-folders; None otherwise."""
    if not rel or rel.startswith(("/", "\\")) or "\\" in rel or "\x00" in rel:
        return None
    parts = Path(rel).parts
    if not parts or parts[0] not in SERVABLE or any(p in ("..", ".") for p in parts):
        return None
    root = folder.resolve()
    try:
        p = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if root not in p.parents or not p.is_file():
        return None
    return p


class ChainCache:
    """Each chain's :class:`ChainIndex` in memory, reloaded when its elements change."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.data: dict[str, tuple[int, ChainIndex]] = {}

    def index(self, chain: str) -> ChainIndex:
        stamp = elements_stamp(self.folder, chain)
        with self.lock:
            hit = self.data.get(chain)
            if hit is None or hit[0] != stamp:
                self.data[chain] = (stamp, chain_index(self.folder, chain))
            return self.data[chain][1]

    def element(self, chain: str, eid: str) -> dict[str, Any] | None:
        """One element's full result (read from its file; ids are hex, never a path)."""
        if not ELEMENT_ID.match(eid):
            return None
        p = self.folder / "results" / chain / "elements" / f"{eid}.json"
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def create_app(folder: str | Path, serve_sources: bool = True) -> Any:
    """The FastAPI app serving the triage folder ``folder``."""
    from fastapi import Body, FastAPI, HTTPException, Query, Request
    from fastapi.responses import FileResponse, JSONResponse, Response

    root = Path(folder).resolve()
    if not (root / "results").is_dir():
        raise SimrealError(f"{root}: not a triage folder with results (run simreal triage run first)")
    cache = ChainCache(root)
    app = FastAPI(title="simreal triage viewer", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def not_found() -> HTTPException:
        return HTTPException(status_code=404, detail="not found")

    def chain_meta(chain: str | None) -> dict[str, Any]:
        try:
            return resolve_chain(root, chain)
        except SimrealError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @app.get("/")
    def index() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return Response(status_code=204)

    @app.get("/static/{name}")
    def static(name: str) -> Any:
        if name not in STATIC_FILES:
            raise not_found()
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    @app.get("/api/chains")
    def chains() -> Any:
        out = []
        for c in list_chains(root):
            out.append({"id": c["id"], "updated": c["updated"], "sampling": c["sampling"], "models": c["models"],
                        "rank": c["rank"], "dedup": c.get("dedup"), "elements": len(cache.index(c["id"]).elements)})
        return out

    @app.get("/api/elements")
    def elements(chain: str | None = None, model: str | None = None, label: str | None = None,
                 by: str = "count", threshold: float = Query(0.5, ge=0.0, le=1.0), k: int = Query(5, ge=1),
                 sort: str | None = None, order_: str = Query("desc", alias="order"), page: int = Query(1, ge=1),
                 per_page: int = Query(25, ge=1, le=500), q: str = "") -> Any:
        meta = chain_meta(chain)
        if by not in METRICS:
            raise HTTPException(status_code=422, detail=f"by: expected one of {', '.join(METRICS)}")
        sort = sort or by
        if sort not in SORT_KEYS or order_ not in ("asc", "desc"):
            raise HTTPException(status_code=422, detail=f"sort: expected one of {', '.join(SORT_KEYS)}")
        try:
            model, label = check_target(meta["models"], model, label)
        except SimrealError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        idx = cache.index(meta["id"])
        ser = idx.series(model, label)
        vals = metrics(ser, threshold, k)
        ids = [e["element"] for e in idx.elements]
        needle = q.strip().lower()
        keep = [e for e, el in enumerate(idx.elements) if not needle or needle in (el.get("title") or "").lower()
                or needle in el["element"]]
        counts = np.diff(ser.offsets)
        if sort in METRICS:
            pos = order(vals, sort, ids, descending=order_ == "desc")
        else:
            key = {"title": lambda e: ((idx.elements[e].get("title") or "").lower(), ids[e]),
                   "duration": lambda e: (idx.elements[e].get("duration") or 0.0, ids[e]),
                   "frames": lambda e: (int(counts[e]), ids[e])}[sort]
            pos = sorted(range(len(ids)), key=key, reverse=order_ == "desc")
        wanted = set(keep)
        pos = [e for e in pos if e in wanted]
        marks = load_reviews(root)
        by_el: dict[str, list[dict[str, Any]]] = {}
        for m in marks.values():
            by_el.setdefault(m["element"], []).append(m)
        total = len(pos)
        start = (page - 1) * per_page
        out = []
        for rank_i, e in enumerate(pos[start:start + per_page], start + 1):
            el = idx.elements[e]
            a, b = int(ser.offsets[e]), int(ser.offsets[e + 1])
            best = int(vals["best"][e])
            thumb = f"{el['frames_dir']}/{int(idx.i[best]):06d}.jpg" if best >= 0 and el.get("frames_dir") else None
            out.append({**{m: float(vals[m][e]) for m in METRICS}, "value": float(vals[by][e]), "rank": rank_i,
                        "element": el["element"], "title": el.get("title"), "kind": el["kind"],
                        "duration": el.get("duration"), "fps": el.get("fps"), "frames": b - a,
                        "t": ser.t[a:b].tolist(), "s": [round(float(v), 4) for v in np.nan_to_num(ser.s[a:b])],
                        "d": idx.dups[a:b].tolist(), "thumb": thumb,
                        "marks": [{"t": m["t"], "mark": m["mark"], "note": m["note"]}
                                  for m in by_el.get(el["element"], [])]})
        return {"chain": meta["id"], "model": model, "label": label, "by": by, "threshold": threshold, "k": k,
                "sort": sort, "order": order_, "page": page, "per_page": per_page, "total": total, "rows": out}

    @app.get("/api/element/{eid}")
    def element(eid: str, chain: str | None = None) -> Any:
        meta = chain_meta(chain)
        r = cache.element(meta["id"], eid)
        if r is None:
            raise not_found()
        marks = [m for m in load_reviews(root).values() if m["element"] == eid]
        links = [link_at(r["source"], f["t"], r.get("webpage_url")) for f in r["frames"]]
        web = [v if v.startswith(("http://", "https://")) else None for v in links]
        return {**r, "marks": marks, "links": web, "media_url": f"/media/{eid}" if serve_sources or
                safe_file(root, r["media"]) else None}

    @app.post("/api/review")
    def review(body: dict[str, Any] = Body(...)) -> Any:
        eid = str(body.get("element", ""))
        try:
            t = float(body.get("t"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise HTTPException(status_code=422, detail="t: expected a number") from None
        mark = body.get("mark")
        if mark not in (*MARKS, None):
            raise HTTPException(status_code=422, detail=f"mark: expected one of {', '.join(MARKS)} or null")
        meta = chain_meta(body.get("chain"))
        r = cache.element(meta["id"], eid)
        if r is None or not any(abs(f["t"] - t) < 1e-3 for f in r["frames"]):
            raise HTTPException(status_code=404, detail="no such element frame")
        note = str(body.get("note") or "")[:5000]
        thr = body.get("threshold")
        rec = save_mark(root, eid, t, mark, note, meta["id"], body.get("model"), body.get("label"),
                        float(thr) if isinstance(thr, (int, float)) else None)
        return rec

    @app.get("/api/reviews")
    def reviews() -> Any:
        return list(load_reviews(root).values())

    @app.get("/export/reviewed.csv")
    def export_csv(chain: str | None = None) -> Any:
        meta = chain_meta(chain)
        res = {r["element"]: r for r in load_elements(root, meta["id"])}
        return Response(reviewed_csv(root, res), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="reviewed.csv"'})

    @app.get("/files/{rel:path}")
    def files(rel: str) -> Any:
        p = safe_file(root, rel)
        if p is None:
            raise not_found()
        return FileResponse(p)

    @app.get("/media/{eid}")
    def media(eid: str) -> Any:
        if not eid.isalnum():
            raise not_found()
        with Store(root, readonly=True) as st:
            el = st.element(eid)
        if el is None:
            raise not_found()
        p = media_path(el, root)
        inside = safe_file(root, el["path"]) if not Path(el["path"]).is_absolute() else None
        if inside is None and not (serve_sources and p.is_file()):
            raise not_found()
        return FileResponse(inside or p)

    @app.exception_handler(404)
    async def nf(request: Request, exc: Any) -> Any:
        return JSONResponse({"detail": "not found"}, status_code=404)

    return app
