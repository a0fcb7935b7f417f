"""``simreal view`` in a real browser (Debian's chromium driven by playwright, headless): timelines,
the live threshold slider, ranking order per metric, review marks that survive a reload, untrusted
web titles shown as text, and a file server that gives 404 to anything outside the triage folder."""

from __future__ import annotations

import functools
import http.client
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .triage_helpers import make_video, object_at, saved_run, scene, train_classifier

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
EVIL_TITLE = "Tank <script>window.__pwned=1</script>"
EVIL_FILE = "<img src=x onerror=window.__pwned=3>.mp4"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (apt-get install -y chromium; "
                                       ".ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import torch
    import uvicorn

    from simreal.triage import run
    from simreal.viewer.app import create_app

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("viewer")
    media, www = d / "media", d / "www"
    make_video(media / "pos.mp4", 10, [(2.0, 6.0)], 1)
    make_video(media / "late.mp4", 10, [(8.0, 9.0)], 2)
    make_video(media / "neg.mp4", 10, [], 3)
    make_video(media / EVIL_FILE, 4, [], 4)
    Image.fromarray(scene(5, 1.0, object_at(1.0, 5))).save(media / "photo.jpg", quality=95)
    make_video(www / "clip.mp4", 4, [(1.0, 3.0)], 6)
    (www / "page.html").write_text(
        '<html><head><meta property="og:title" content="Tank &lt;script&gt;window.__pwned=1&lt;/script&gt;">'
        '<meta property="og:description" content="&lt;img src=x onerror=window.__pwned=2&gt; seen">'
        '</head><body><video src="clip.mp4"></video></body></html>')
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}), directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    clf = train_classifier(d)
    det = saved_run(d / "det", "detect", "squeezedet_tiny", (32, 48), ["canister"],
                    extra="detect: {num_anchors: 2, keep_threshold: 0.0}",
                    task_state={"fitted_anchors": [[10.0, 12.0], [20.0, 22.0]]})
    folder = d / "triage"
    chain = [{"name": "Frames", "config": {"fps": 1}},
             {"name": "Score", "config": {"models": [{"run": str(clf), "name": "clf"},
                                                     {"run": str(det), "name": "det", "box_threshold": 0.0,
                                                      "max_boxes": 3}]}}]
    run({"folder": str(folder), "select": {"name": "Local", "config": {"paths": [str(media)]}}, "analyse": chain,
         "workers": 0}, progress=False)
    web = f"http://127.0.0.1:{httpd.server_address[1]}/page.html"
    run({"folder": str(folder), "select": {"name": "Urls", "config": {"urls": [web]}}, "analyse": chain,
         "workers": 0}, progress=False)
    httpd.shutdown()
    (folder / "stages" / "evil").symlink_to("/etc/passwd")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(folder), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    results = {r["title"]: r for r in (json.loads(p.read_text()) for p in folder.glob("results/*/elements/*.json"))}
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield {"folder": folder, "url": f"http://127.0.0.1:{port}", "port": port, "results": results,
           "browser": browser}
    browser.close()
    pw.stop()
    server.should_exit = True
    th.join(timeout=5)


@pytest.fixture()
def page(site: dict[str, Any]) -> Iterator[Any]:
    ctx = site["browser"].new_context(viewport={"width": 1300, "height": 800})
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(site["url"] + "/")
    pg.wait_for_selector(".row")
    yield pg
    assert not pg.errors
    ctx.close()


def _scores(r: dict[str, Any]) -> np.ndarray:
    return np.array([f["scores"]["clf"]["canister"] for f in r["frames"]])


def _rows(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(".row", """els => els.map(e => ({el: e.dataset.element, value: +e.dataset.value,
        above: +e.lastChild.dataset.above, frames: +e.lastChild.dataset.frames, tag: e.lastChild.tagName,
        title: e.querySelector('.title').textContent}))""")


def _set_threshold(page: Any, v: float) -> None:
    page.eval_on_selector("#threshold", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", v)
    page.wait_for_function("v => document.getElementById('status').textContent.includes('threshold ' + v)",
                           arg=f"{v:.2f}")


def test_timelines_render(page: Any, site: dict[str, Any]) -> None:
    rows = _rows(page)
    res = site["results"]
    assert len(rows) == len(res) == 6
    assert sorted(r["tag"] for r in rows) == ["CANVAS"] * 5 + ["IMG"]
    by_id = {r["element"]: r for r in res.values()}
    for r in rows:
        assert r["frames"] == len(by_id[r["el"]]["frames"]) > 0
    lit = page.eval_on_selector_all("canvas.timeline", """cs => cs.map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; })""")
    assert all(n > 0 for n in lit)
    src = page.eval_on_selector("img.thumb", "e => e.getAttribute('src')")
    assert src.startswith("/files/stages/") and page.request.get(site["url"] + src).status == 200


def test_slider_changes_what_is_shown(page: Any, site: dict[str, Any]) -> None:
    by_id = {r["element"]: r for r in site["results"].values()}
    seen = {}
    for thr in (0.5, 0.95, 0.05):
        _set_threshold(page, thr)
        rows = _rows(page)
        for r in rows:
            assert r["above"] == int((_scores(by_id[r["el"]]) >= thr).sum()), (thr, r)
        seen[thr] = sum(r["above"] for r in rows)
    assert seen[0.95] < seen[0.5] < seen[0.05]


@pytest.mark.parametrize("by", ["max", "count", "fraction"])
def test_ranking_order_follows_the_metric(page: Any, site: dict[str, Any], by: str) -> None:
    page.select_option("#by", by)
    page.wait_for_function("b => location.hash.includes('by=' + b)", arg=by)
    page.wait_for_timeout(300)
    got = [r["el"] for r in _rows(page)]

    def value(r: dict[str, Any]) -> float:
        s = _scores(r)
        return {"max": s.max(), "count": float((s >= 0.5).sum()), "fraction": float((s >= 0.5).mean())}[by]

    want = sorted(site["results"].values(), key=lambda r: (-value(r), -_scores(r).max(), r["element"]))
    assert got == [r["element"] for r in want]
    vals = [r["value"] for r in _rows(page)]
    assert vals == sorted(vals, reverse=True)


@pytest.mark.parametrize("k", [1, 3])
def test_topk_mean_ranking_follows_k(page: Any, site: dict[str, Any], k: int) -> None:
    page.select_option("#by", "topk-mean")
    page.fill("#k", str(k))
    page.dispatch_event("#k", "change")
    page.wait_for_function("k => location.hash.includes('by=topk-mean') && location.hash.includes('k=' + k)",
                           arg=k)
    page.wait_for_timeout(300)
    rows = _rows(page)

    def value(r: dict[str, Any]) -> float:
        return float(np.sort(_scores(r))[::-1][:k].mean())

    want = sorted(site["results"].values(), key=lambda r: (-value(r), -_scores(r).max(), r["element"]))
    assert [r["el"] for r in rows] == [r["element"] for r in want]
    got = {r["el"]: r["value"] for r in rows}
    for r in want:
        assert got[r["element"]] == pytest.approx(value(r), abs=1e-3)


def test_review_marks_persist_after_reload(page: Any, site: dict[str, Any]) -> None:
    pos = site["results"]["pos.mp4"]
    best_t = pos["frames"][int(np.argmax(_scores(pos)))]["t"]
    canvas = page.locator(f".row[data-element='{pos['element']}'] canvas")
    box = canvas.bounding_box()
    dur = max(pos["duration"], pos["frames"][-1]["t"] + 1)
    canvas.click(position={"x": (best_t + 0.3) / dur * box["width"], "y": box["height"] / 2})
    page.wait_for_selector("#panel:not([hidden])")
    assert page.text_content("#p-time").startswith(f"0:0{int(best_t)}")
    assert page.eval_on_selector("#p-img", "e => e.naturalWidth") == 128
    page.click("#mark-relevant")
    page.wait_for_function("() => document.getElementById('p-mark').textContent.includes('relevant')")
    page.fill("#p-note", "seen at the gate")
    page.click("#save-note")
    page.wait_for_function("() => document.getElementById('p-mark').textContent.includes('note saved')")
    page.reload()
    page.wait_for_selector(".row")
    sub = page.text_content(f".row[data-element='{pos['element']}'] .sub")
    assert "1 marked" in sub
    canvas = page.locator(f".row[data-element='{pos['element']}'] canvas")
    canvas.click(position={"x": (best_t + 0.3) / dur * box["width"], "y": box["height"] / 2})
    page.wait_for_selector("#panel:not([hidden])")
    assert page.text_content("#p-mark") == "marked relevant · note saved"
    assert page.input_value("#p-note") == "seen at the gate"
    marks = json.loads((site["folder"] / "reviews.json").read_text())["marks"]
    assert [(m["element"], m["t"], m["mark"], m["note"], m["model"], m["label"]) for m in marks] == [
        (pos["element"], best_t, "relevant", "seen at the gate", "clf", "canister")]
    csv_text = page.request.get(site["url"] + "/export/reviewed.csv").text()
    assert "seen at the gate" in csv_text and f"#t={best_t:.3f}" in csv_text
    (site["folder"] / "reviews.json").unlink()


def test_untrusted_titles_are_text_and_run_nothing(page: Any, site: dict[str, Any]) -> None:
    titles = [r["title"] for r in _rows(page)]
    assert any(t.startswith(EVIL_TITLE) for t in titles) and EVIL_FILE in titles
    web = next(r for r in site["results"].values() if r["title"].startswith(EVIL_TITLE))
    page.locator(f".row[data-element='{web['element']}'] canvas").click(position={"x": 5, "y": 10})
    page.wait_for_selector("#panel:not([hidden])")
    assert page.text_content("#p-title").startswith(EVIL_TITLE)
    assert page.text_content("#p-desc") == "<img src=x onerror=window.__pwned=2> seen"
    assert page.get_attribute("#p-link", "href").startswith("http://127.0.0.1:")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__pwned") is None
    assert page.eval_on_selector_all("img[src='x'], script:not([src])", "els => els.length") == 0


def test_frame_panel_draws_the_detector_boxes(page: Any, site: dict[str, Any]) -> None:
    pos = site["results"]["pos.mp4"]
    page.select_option("#model", "det")
    page.wait_for_function("() => location.hash.includes('model=det')")
    page.wait_for_selector(f".row[data-element='{pos['element']}'] canvas")
    _set_threshold(page, 0.0)
    page.locator(f".row[data-element='{pos['element']}'] canvas").click(position={"x": 3, "y": 10})
    page.wait_for_selector("#panel:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#p-boxes .box').length > 0")
    boxes = pos["frames"][0]["boxes"]["det"]
    drawn = page.eval_on_selector_all("#p-boxes .box", """bs => bs.map(b => [parseFloat(b.style.left),
        parseFloat(b.style.top), parseFloat(b.style.width), parseFloat(b.style.height), b.textContent])""")
    scale = page.eval_on_selector("#p-img", "e => e.clientWidth / e.naturalWidth")
    assert len(drawn) == len(boxes) == 3
    for d, b in zip(drawn, boxes, strict=True):
        x1, y1, x2, y2 = b["box"]
        assert d[:4] == pytest.approx([x1 * scale, y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale], abs=0.5)
        assert d[4] == f"canister {b['score']:.2f}"
    _set_threshold(page, 1.0)  # boxes under the threshold disappear
    assert page.eval_on_selector_all("#p-boxes .box", "bs => bs.length") == sum(b["score"] >= 1.0 for b in boxes)


def _status(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})  # the raw path: no client-side normalisation
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def test_nothing_outside_the_folder_is_served(site: dict[str, Any]) -> None:
    port, folder = site["port"], site["folder"]
    pos = site["results"]["pos.mp4"]
    frame = pos["frames"][0]["file"]
    assert _status(port, "/files/" + frame)[0] == 200
    for path in ("/files/../triage.sqlite", "/files/..%2ftriage.sqlite", "/files/%2e%2e/%2e%2e/etc/passwd",
                 "/files//etc/passwd", "/files/%2Fetc%2Fpasswd", "/files/stages/../../../../etc/passwd",
                 "/files/stages/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/files/triage.sqlite", "/files/reviews.json",
                 "/files/stages/evil", "/files/stages", "/static/../app.py", "/static/%2e%2e%2fapp.py",
                 "/media/../triage.sqlite", "/media/%2e%2e", "/media/0123456789abcdef", "/files/stages/x%00.jpg"):
        code, body = _status(port, path)
        assert code == 404, (path, code)
        assert b"root:" not in body
    code, body = _status(port, f"/media/{pos['element']}")
    assert code == 200 and body == (folder.parent / "media" / "pos.mp4").read_bytes()
    code, body = _status(port, f"/media/{pos['element']}", {"Range": "bytes=0-99"})
    assert code == 206 and len(body) == 100  # seekable for the video player


def test_review_api_rejects_bad_requests(site: dict[str, Any]) -> None:
    import urllib.error
    import urllib.request

    pos = site["results"]["pos.mp4"]

    def post(body: dict[str, Any]) -> int:
        req = urllib.request.Request(site["url"] + "/api/review", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            return urllib.request.urlopen(req).status
        except urllib.error.HTTPError as e:
            return e.code

    assert post({"element": pos["element"], "t": 0.0, "mark": "maybe"}) == 422
    assert post({"element": pos["element"], "t": "soon", "mark": "relevant"}) == 422
    assert post({"element": "0123456789abcdef", "t": 0.0, "mark": "relevant"}) == 404
    assert post({"element": pos["element"], "t": 0.5, "mark": "relevant"}) == 404  # not a sampled frame
    assert not (site["folder"] / "reviews.json").exists()
