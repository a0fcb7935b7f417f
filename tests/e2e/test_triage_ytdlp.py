"""URL lists and platform searches go through yt-dlp: here against a local HTTP server on 127.0.0.1
(yt-dlp's generic extractor), never the internet. Downloads, metadata and failures are cached, so a
rerun makes no request at all."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simreal.triage import run

from .triage_helpers import make_video


class _Server:
    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                log.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    root = tmp_path_factory.mktemp("www")
    for name, day, seed in (("clip.mp4", (2021, 3, 4), 1), ("old.mp4", (2020, 1, 10), 2),
                            ("new.mp4", (2022, 5, 1), 3)):
        make_video(root / name, 3, [(1.0, 2.0)], seed)
        ts = dt.datetime(*day, 12, tzinfo=dt.timezone.utc).timestamp()
        os.utime(root / name, (ts, ts))  # served as Last-Modified, which yt-dlp reads as the upload date
    s = _Server(root)
    s.root = root  # type: ignore[attr-defined]
    yield s
    s.httpd.shutdown()


def _cfg(folder: Path, select: dict[str, Any]) -> dict[str, Any]:
    return {"folder": str(folder), "select": select, "analyse": [{"name": "Frames", "config": {"fps": 1}}],
            "workers": 0}


def test_url_list_downloads_once_and_records_failures(server: _Server, tmp_path: Path) -> None:
    folder = tmp_path / "urls"
    urls = [f"{server.url}/clip.mp4", f"{server.url}/missing.mp4"]
    res = run(_cfg(folder, {"name": "Urls", "config": {"urls": urls}}), progress=False)
    assert len(res.done) == 1 and [u for u, _ in res.failed] == [urls[1]]
    assert "404" in res.failed[0][1]
    (el,) = [json.loads(p.read_text()) for p in folder.glob("results/*/elements/*.json")]
    assert el["source"] == urls[0] and el["title"] == "clip" and el["upload_date"] == "2021-03-04"
    assert el["kind"] == "video" and len(el["frames"]) == 3
    media = folder / el["media"]
    assert media.parent == folder / "media" and media.read_bytes() == (server.root / "clip.mp4").read_bytes()  # type: ignore[attr-defined]
    n = len(server.requests)
    again = run(_cfg(folder, {"name": "Urls", "config": {"urls": urls}}), progress=False)
    assert len(server.requests) == n  # nothing fetched again, not even the URL that failed
    assert again.reused == 1 and [u for u, _ in again.failed] == [urls[1]]
    retry = run(_cfg(folder, {"name": "Urls", "config": {"urls": urls}}), retry_failed=True, progress=False)
    assert len(server.requests) > n and retry.failed and not list(folder.glob("media/.*"))


def test_search_filters_by_upload_date_and_spends_the_query_once(server: _Server, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from simreal.triage import selectors

    calls: list[str] = []

    def fake_search(cfg: Any, log: Any = None) -> list[dict[str, Any]]:
        # the platform itself is the one thing replaced: its results point at the local server
        calls.append(f"{cfg.site}{cfg.max_results}:{cfg.query}")
        return [{"url": f"{server.url}/old.mp4", "title": "old"}, {"url": f"{server.url}/new.mp4", "title": "new"}]

    monkeypatch.setattr(selectors, "search_entries", fake_search)
    folder = tmp_path / "search"
    select = {"name": "Youtube", "config": {"search_term": "canister", "uploaded_after": "2020-01-01T00:00:00Z",
                                           "uploaded_before": "2020-12-31T00:00:00Z"}}
    res = run(_cfg(folder, select), progress=False)
    assert calls == ["ytsearch50:canister"]
    assert len(res.done) == 1 and res.skipped == [(f"{server.url}/new.mp4",
                                                   "uploaded 2022-05-01, outside 2020-01-01..2020-12-31")]
    (el,) = [json.loads(p.read_text()) for p in folder.glob("results/*/elements/*.json")]
    assert el["title"] == "old" and el["upload_date"] == "2020-01-10"
    n = len(server.requests)
    again = run(_cfg(folder, select), progress=False)
    assert calls == ["ytsearch50:canister"] and len(server.requests) == n and again.reused == 1
