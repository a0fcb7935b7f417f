"""The triage store: content hashes cached by (path, size, mtime) and recomputed when a file changes;
one run per folder; leftovers of killed runs removed and nothing else."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from simreal.errors import ConfigError
from simreal.triage.store import DONE, FolderLock, Store, clean_temporaries, stable_hash


def test_file_hash_is_sha256_and_follows_changes(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 3_000_000)
    with Store(tmp_path / "t") as st:
        assert st.file_hash(f) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
        f.write_bytes(b"y" * 3_000_000)  # same size: the mtime tells
        os.utime(f, ns=(1, 10**18))
        assert st.file_hash(f) == hashlib.sha256(b"y" * 3_000_000).hexdigest()
        row = st.conn.execute("SELECT sha256 FROM files WHERE path=?", (str(f),)).fetchone()
        assert row[0] == hashlib.sha256(b"y" * 3_000_000).hexdigest()


def test_tasks_elements_and_caches_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        st.add_element("e1", "video", "/m/a.mp4", "/m/a.mp4", {"title": "a"}, "Local-1", "Local")
        st.record("frames-1", "e1", DONE, output="stages/frames-1/e1", info={"n": 3}, seconds=0.5)
        st.cache_put("url:x", {"status": "ok"})
    with Store(tmp_path, readonly=True) as st:
        assert st.element("e1")["title"] == "a" and [e["id"] for e in st.elements("Local")] == ["e1"]
        assert st.elements("Urls") == []
        t = st.task("frames-1", "e1")
        assert t is not None and t["status"] == DONE and t["info"] == {"n": 3}
        assert st.cache_get("url:x") == {"status": "ok"} and st.cache_get("url:y") is None
    with pytest.raises(ConfigError, match="not a triage folder"):
        Store(tmp_path / "nothing", readonly=True)


def test_one_run_per_folder(tmp_path: Path) -> None:
    with FolderLock(tmp_path):
        with pytest.raises(ConfigError, match="another simreal triage run is using this folder"):
            with FolderLock(tmp_path):
                pass
    with FolderLock(tmp_path):  # released
        pass


def test_clean_temporaries_removes_only_leftovers(tmp_path: Path) -> None:
    keep = [tmp_path / "stages/frames-1/e1/000000.jpg", tmp_path / "stages/score-1/e1.json",
            tmp_path / "results/c/elements/e1.json", tmp_path / "media/abc.mp4"]
    gone = [tmp_path / "stages/frames-1/.e2.tmp-123/000000.jpg", tmp_path / "stages/score-1/.e2.json.x1y2.json.tmp",
            tmp_path / "media/.dl.tmp-ab/media.mp4.part"]
    for p in keep + gone:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"1")
    assert clean_temporaries(tmp_path) == 3
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)


def test_stable_hash_ignores_key_order() -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
