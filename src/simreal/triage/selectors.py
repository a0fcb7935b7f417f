"""Selectors: where a triage's media come from — local files and folders, a list of URLs, or a platform
search (both through yt-dlp).

Elements are identified by content: the sha256 of the media bytes (first 16 hex digits). Search
results, per-URL metadata and downloads are cached in the folder's store, so a rerun spends no quota
and downloads nothing again.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simreal.errors import ConfigError
from simreal.triage.config import (
    DownloadOptions,
    LocalSelect,
    SearchSelect,
    TriageConfig,
    UrlsSelect,
)
from simreal.triage.media import VIDEO_EXTS, media_kind
from simreal.triage.store import FAILED, SKIPPED, TMP_MARK, Store, stable_hash

ID_LEN = 16
SELECT_STAGE = "select"


@dataclass
class Selection:
    """Elements picked by a selector, plus what it skipped or could not fetch (source, reason)."""

    elements: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    reused_failures: int = 0


def rel_or_abs(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` when inside it (the folder stays movable), else absolute."""
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


def media_path(element: dict[str, Any], folder: Path) -> Path:
    """The local media file of an element (paths inside the folder are stored relative to it)."""
    p = Path(element["path"])
    return p if p.is_absolute() else folder / p


# ----------------------------------------------------------------------------- local files


def list_local(cfg: LocalSelect, exclude_root: Path | None = None) -> tuple[list[tuple[Path, str]],
                                                                            list[tuple[str, str]]]:
    """Media files under ``cfg.paths`` as (path, kind), sorted, and the files left out with why.
    Nothing under ``exclude_root`` (the triage folder itself) is taken."""
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in cfg.extensions) if cfg.extensions \
        else None
    found: list[tuple[Path, str]] = []
    skipped: list[tuple[str, str]] = []
    ex_root = exclude_root.resolve() if exclude_root is not None else None

    def consider(p: Path, root: Path, explicit: bool) -> None:
        if ex_root is not None and (p.resolve() == ex_root or ex_root in p.resolve().parents):
            return
        rel = p.relative_to(root).as_posix() if root in p.parents else p.name
        if any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(p.name, pat) for pat in cfg.exclude):
            return
        kind = media_kind(p, exts, cfg.sniff)
        if kind is None:
            if explicit:
                skipped.append((str(p), "not a video or image file (by extension and content)"))
            return
        found.append((p, kind))

    for i, raw in enumerate(cfg.paths):
        p = Path(raw)
        if p.is_file():
            consider(p, p.parent, True)
        elif p.is_dir():
            walker = os.walk(p) if cfg.recursive else [(str(p), [], [e.name for e in os.scandir(p) if e.is_file()])]
            for dirpath, dirnames, filenames in walker:
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        consider(Path(dirpath) / name, p, False)
        else:
            raise ConfigError(f"select.config.paths[{i}]: {p}: no such file or folder")
    return found, skipped


def select_local(cfg: LocalSelect, store: Store, folder: Path, key: str) -> Selection:
    sel = Selection()
    files, sel.skipped = list_local(cfg, folder)
    seen: dict[str, str] = {}
    for path, kind in files:
        eid = store.file_hash(path)[:ID_LEN]
        if eid in seen:
            sel.skipped.append((str(path), f"same content as {seen[eid]}"))
            continue
        seen[eid] = str(path)
        st = path.stat()
        meta = {"title": path.name, "description": None, "upload_date": None, "webpage_url": None,
                "modified": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat(timespec="seconds"),
                "bytes": st.st_size}
        store.add_element(eid, kind, str(path.resolve()), str(path.resolve()), meta, key, "Local")
        sel.elements.append({"id": eid, "kind": kind, "path": str(path.resolve()), "source": str(path.resolve()),
                             **meta})
    return sel


# ----------------------------------------------------------------------------- yt-dlp


class _QuietLogger:
    """yt-dlp logger that keeps its chatter out of the terminal (errors come back as exceptions)."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self.log = log

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        if self.log:
            self.log(f"yt-dlp: {msg}")

    def error(self, msg: str) -> None:
        if self.log:
            self.log(f"yt-dlp: {msg}")


def _ydl_opts(opt: DownloadOptions, outdir: Path | None, log: Callable[[str], None] | None) -> dict[str, Any]:
    o: dict[str, Any] = {"quiet": True, "no_warnings": True, "noprogress": True, "noplaylist": True,
                         "logger": _QuietLogger(log), "cachedir": False, "format": opt.format,
                         "retries": opt.retries, "socket_timeout": opt.timeout, "overwrites": True,
                         "color": {"stdout": "never", "stderr": "never"}}
    if outdir is not None:
        o["outtmpl"] = {"default": str(outdir / "media.%(ext)s")}
    if opt.max_filesize:
        o["max_filesize"] = opt.max_filesize
    if opt.rate_limit:
        o["ratelimit"] = opt.rate_limit
    if opt.sleep_interval:
        o["sleep_interval"] = opt.sleep_interval
    return o


def _iso_date(d: Any) -> str | None:
    if not d:
        return None
    s = str(d)
    return f"{s[:4]}-{s[4:6]}-{s[6:8]}" if len(s) == 8 and s.isdigit() else s


def _error_text(exc: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().replace("ERROR: ", "")
    return (text.splitlines() or [type(exc).__name__])[0][:300]


def _kind_of_download(path: Path) -> str:
    return media_kind(path) or ("video" if path.suffix.lower() in VIDEO_EXTS else "video")


def fetch_url(url: str, opt: DownloadOptions, store: Store, folder: Path, key: str, name: str,
              date_range: tuple[_dt.date | None, _dt.date | None] | None = None,
              log: Callable[[str], None] | None = None, retry_failed: bool = False) -> tuple[str, Any]:
    """Fetch one URL through yt-dlp into ``FOLDER/media/`` (or reuse the cached download).
    Returns ``("ok", element)``, ``("skipped", reason)`` or ``("failed", reason)``."""
    from yt_dlp import YoutubeDL

    ckey = "url:" + url
    cached = store.cache_get(ckey)
    if cached is not None:
        if cached["status"] == "ok" and media_path(cached["element"], folder).is_file():
            el = cached["element"]
            store.add_element(el["id"], el["kind"], el["path"], el["source"], _meta(el), key, name)
            return "ok", el
        if cached["status"] == SKIPPED:
            if _in_range(cached.get("upload_date"), date_range):
                pass  # the range changed: consider it again
            else:
                return SKIPPED, cached["reason"]
        if cached["status"] == FAILED and not retry_failed:
            return "reused-failure", cached["reason"]
    media = folder / "media"
    tmp = media / f".dl{TMP_MARK}{stable_hash(url)}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with YoutubeDL(_ydl_opts(opt, tmp, log)) as ydl:
            info = ydl.extract_info(url, download=False)
            if info is None:
                raise RuntimeError("no media found")
            if info.get("_type") in ("playlist", "multi_video"):
                raise RuntimeError("a playlist, not one video (list its videos as separate URLs)")
            up = _iso_date(info.get("upload_date"))
            if date_range is not None and not _in_range(up, date_range):
                reason = f"uploaded {up or 'on an unknown date'}, outside {_range_text(date_range)}"
                store.cache_put(ckey, {"status": SKIPPED, "reason": reason, "upload_date": up})
                return SKIPPED, reason
            info = ydl.process_ie_result(info, download=True)
            files = [Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")]
            files = [f for f in files if f.is_file()] or sorted(p for p in tmp.iterdir() if p.is_file()
                                                                and not p.name.endswith(".part"))
            if not files:
                raise RuntimeError("yt-dlp wrote no file (too large, or no format matched)")
        got = files[0]
        eid = store.file_hash(got)[:ID_LEN]
        dest = media / f"{eid}{got.suffix.lower()}"
        os.replace(got, dest)
        store.conn.execute("DELETE FROM files WHERE path=?", (str(got),))
        el = {"id": eid, "kind": _kind_of_download(dest), "path": rel_or_abs(dest, folder), "source": url,
              "title": info.get("title"), "description": info.get("description"), "upload_date": up,
              "webpage_url": info.get("webpage_url") or url, "duration": info.get("duration"),
              "uploader": info.get("uploader"), "extractor": info.get("extractor_key"), "media_id": info.get("id")}
        store.add_element(eid, el["kind"], el["path"], url, _meta(el), key, name)
        store.cache_put(ckey, {"status": "ok", "element": el})
        return "ok", el
    except Exception as exc:  # noqa: BLE001 - yt-dlp raises many kinds; each URL fails on its own
        reason = _error_text(exc)
        store.cache_put(ckey, {"status": FAILED, "reason": reason})
        return FAILED, reason
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _meta(el: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in el.items() if k not in ("id", "kind", "path", "source")}


def _in_range(date: str | None, rng: tuple[_dt.date | None, _dt.date | None] | None) -> bool:
    if rng is None or (rng[0] is None and rng[1] is None):
        return True
    if date is None:
        return False
    d = _dt.date.fromisoformat(date)
    return (rng[0] is None or d >= rng[0]) and (rng[1] is None or d <= rng[1])


def _range_text(rng: tuple[_dt.date | None, _dt.date | None]) -> str:
    return f"{rng[0] or '…'}..{rng[1] or '…'}"


def read_url_list(cfg: UrlsSelect) -> list[str]:
    urls = list(cfg.urls)
    if cfg.url_file:
        p = Path(cfg.url_file)
        if not p.is_file():
            raise ConfigError(f"select.config.url_file: {p}: file not found")
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                urls.append(line)
    return list(dict.fromkeys(urls))


def search_entries(cfg: SearchSelect, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The platform search itself (one yt-dlp search request): result URLs with titles."""
    from yt_dlp import YoutubeDL

    opts = _ydl_opts(cfg.download, None, log)
    opts["extract_flat"] = "in_playlist"
    with YoutubeDL(opts) as ydl:
        res = ydl.extract_info(f"{cfg.site}{cfg.max_results}:{cfg.query}", download=False)
    out = []
    for e in (res or {}).get("entries") or []:
        url = e.get("webpage_url") or e.get("url")
        if url:
            out.append({"url": url, "title": e.get("title"), "id": e.get("id")})
    return out


def _fetch_all(urls: list[str], opt: DownloadOptions, store: Store, folder: Path, key: str, name: str,
               date_range: Any, log: Callable[[str], None] | None, retry_failed: bool) -> Selection:
    sel = Selection()
    seen: set[str] = set()
    for url in urls:
        status, val = fetch_url(url, opt, store, folder, key, name, date_range, log, retry_failed)
        if status == "ok":
            if val["id"] in seen:
                sel.skipped.append((url, "same content as an earlier URL"))
                continue
            seen.add(val["id"])
            sel.elements.append(val)
        elif status == SKIPPED:
            sel.skipped.append((url, val))
        else:
            sel.failed.append((url, val))
            sel.reused_failures += status == "reused-failure"
    return sel


def select(cfg: TriageConfig, store: Store, folder: Path, log: Callable[[str], None] | None = None) -> Selection:
    """Run the config's selector (or gather ``elements_in``) and register its elements in ``store``."""
    if cfg.elements_in is not None:
        return elements_in(cfg.elements_in, store, folder)
    assert cfg.select is not None
    s = cfg.select
    key = f"{s.name}-{stable_hash(s.config.model_dump(mode='json'))}"
    if s.name == "Local":
        assert isinstance(s.config, LocalSelect)
        return select_local(s.config, store, folder, key)
    if s.name == "Urls":
        assert isinstance(s.config, UrlsSelect)
        return _fetch_all(read_url_list(s.config), s.config.download, store, folder, key, "Urls", None, log,
                          cfg.retry_failed)
    assert isinstance(s.config, SearchSelect)
    c = s.config
    skey = "search:" + stable_hash({"q": c.query, "site": c.site, "n": c.max_results})
    entries = store.cache_get(skey)
    if entries is None:
        try:
            entries = search_entries(c, log)
        except Exception as exc:  # noqa: BLE001 - network or platform failure: one line
            raise ConfigError(f"select: search {c.site}:{c.query!r} failed ({_error_text(exc)})") from None
        store.cache_put(skey, entries)
    return _fetch_all([e["url"] for e in entries], c.download, store, folder, key, "Search",
                      (c.uploaded_after, c.uploaded_before), log, cfg.retry_failed)


def elements_in(queries: list[str], store: Store, folder: Path) -> Selection:
    """Elements selected earlier: by selector name in this folder, or every element of another folder."""
    sel = Selection()
    seen: set[str] = set()
    for i, q in enumerate(queries):
        if q in ("Local", "Urls", "Search"):
            found = store.elements(q)
            base = folder
        else:
            other = Path(q)
            if not other.is_dir():
                raise ConfigError(f"elements_in[{i}]: {q}: neither a selector name (Local, Urls, Search) nor a "
                                  "triage folder")
            with Store(other, readonly=True) as st:
                found = st.elements()
            base = other
        for el in found:
            if el["id"] in seen:
                continue
            seen.add(el["id"])
            el = dict(el)
            p = media_path(el, base)
            el["path"] = rel_or_abs(p, folder)
            if not p.is_file():
                sel.failed.append((el["source"], f"media file missing: {p}"))
                continue
            store.add_element(el["id"], el["kind"], el["path"], el["source"], _meta(el), f"elements_in:{q}", q)
            sel.elements.append(el)
    return sel
