"""The therapist's review page in headless Chromium (Debian ``chromium`` driven by playwright): chips
grouped by predicted expression, a label corrected by clicking becomes a labelled test set that
``simreal eval`` reads, words edited on the page land in the words file, untrusted text is shown as
text, and the server serves chips by id only."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from simreal.datasets.contract import Dataset

from .faces_fixtures import CLASSES, cli

CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(adda_run: Path, target_chips: Path, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    uvicorn = pytest.importorskip("uvicorn")
    from simreal.faces.review import ReviewState, create_app

    words = tmp_path / "sam.yaml"
    words.write_text(yaml.safe_dump({"child": "Sam <b>", "words": {"neutral": "<img src=x onerror=alert(1)>",
                                                                   "mouth_open": "water"}}))
    state = ReviewState(target_chips, tmp_path / "review", words, adda_run, "cpu")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", tmp_path / "review", words
    srv.should_exit = True
    th.join(timeout=10)


def test_review_page_in_headless_chromium(server: tuple[str, Path, Path], adda_run: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, review, words = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        chips = page.locator(".chip")
        assert chips.count() == 10  # every chip of the target person, grouped by predicted expression
        for name in CLASSES:
            assert page.locator(f"#group-{name} h2").count() == 1
        assert sum(page.locator(f"#group-{n} .chip").count() for n in CLASSES) == 10
        assert page.locator("img[src='x']").count() == 0  # a word is text, never markup
        assert page.locator("#word-neutral").input_value() == "<img src=x onerror=alert(1)>"
        assert "Sam <b>" in page.locator("#who").inner_text()
        first = chips.nth(0)
        cid = int(first.get_attribute("data-id"))
        first.click()
        page.locator(".menu button[data-label='eyes_closed']").click()
        page.wait_for_function("document.getElementById('status').textContent.startsWith('saved')")
        assert "eyes_closed" in first.inner_text()
        second = chips.nth(1)
        second.click()
        page.locator(".menu button[data-label='neutral']").click()
        page.wait_for_function("document.getElementById('nlab').textContent === '2'")
        page.fill("#word-eyes_closed", "tired")
        page.fill("#word-neutral", "")
        page.click("#save-words")
        page.wait_for_function("document.getElementById('status').textContent === 'words saved'")
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        browser.close()
    labels = json.loads((review / "labels.json").read_text())
    assert labels["labels"][str(cid)] == "eyes_closed" and len(labels["labels"]) == 2
    test_set = Dataset.open(review / "test_set")
    assert test_set.class_names == CLASSES and len(test_set) == 2
    assert {test_set.class_names[r["label"] - 1] for r in test_set.images} == {"eyes_closed", "neutral"}
    saved = yaml.safe_load(words.read_text())
    assert saved["words"] == {"mouth_open": {"word": "water"}, "eyes_closed": {"word": "tired"}}
    assert saved["child"] == "Sam <b>"
    assert cli("eval", "--run", str(adda_run), "--data", str(review / "test_set"), "--out", str(tmp_path / "ev")) == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n"] == 2


def test_review_server_serves_chips_by_id_only(server: tuple[str, Path, Path]) -> None:
    httpx = pytest.importorskip("httpx")
    url, review, _ = server
    assert httpx.get(f"{url}/chip/1").headers["content-type"] == "image/png"
    assert httpx.get(f"{url}/chip/9999").status_code == 404
    assert httpx.get(f"{url}/chip/..%2F..%2Fdataset.json").status_code in (404, 422)
    r = httpx.post(f"{url}/api/label", json={"id": 1, "label": "not_a_class"})
    assert r.status_code == 400 and "not a class" in r.json()["detail"]
    r = httpx.post(f"{url}/api/words", json={"words": {"happy": "yes"}})
    assert r.status_code == 400 and "does not know the expression 'happy'" in r.json()["detail"]
    assert not (review / "labels.json").exists()
    shutil.rmtree(review, ignore_errors=True)
