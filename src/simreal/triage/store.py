"""The triage folder's element store and task table (SQLite, written by the driver alone).

Every unit of work is a row keyed by ``(stage key, input content hash)``: the stage key is the stage
name plus a hash of its config and of everything upstream, the input hash is the element's content
hash. Outputs live under ``stages/<stage key>/<element>`` and are written atomically, so a row marked
done always has its complete output, and an output without a row (killed between the rename and the
commit) is recognised and adopted on the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from simreal.errors import ConfigError

DB_NAME = "triage.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                                  sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS elements (id TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL,
                                     source TEXT NOT NULL, meta TEXT NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS selections (selector TEXT NOT NULL, name TEXT NOT NULL, element TEXT NOT NULL,
                                       PRIMARY KEY (selector, element));
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (stage TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL,
                                  output TEXT, error TEXT, info TEXT, finished REAL NOT NULL,
                                  seconds REAL, PRIMARY KEY (stage, input));
CREATE TABLE IF NOT EXISTS chains (id TEXT PRIMARY KEY, config TEXT NOT NULL, created REAL NOT NULL,
                                   updated REAL NOT NULL);
"""
DONE, FAILED, SKIPPED = "done", "failed", "skipped"
TMP_MARK = ".tmp-"


def stable_hash(obj: Any, n: int = 12) -> str:
    """A short hex digest of JSON-serialisable ``obj`` (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


class FolderLock:
    """An exclusive ``flock`` on ``FOLDER/.lock``: one triage run per folder at a time."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self.fh: Any = None

    def __enter__(self) -> FolderLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            raise ConfigError(f"{self.path.parent}: another simreal triage run is using this folder") from None
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()


class Store:
    """SQLite tables of one triage folder: file hashes, elements, selections, caches, tasks, chains."""

    def __init__(self, folder: str | Path, readonly: bool = False) -> None:
        self.folder = Path(folder)
        path = self.folder / DB_NAME
        if readonly:
            if not path.is_file():
                raise ConfigError(f"{self.folder}: not a triage folder (no {DB_NAME})")
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(path), timeout=30.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # file hashes ---------------------------------------------------------------
    def file_hash(self, path: Path) -> str:
        """sha256 of a file, cached by (path, size, mtime) so reruns do not read the bytes again."""
        st = path.stat()
        key = str(path)
        row = self.conn.execute("SELECT size, mtime_ns, sha256 FROM files WHERE path=?", (key,)).fetchone()
        if row is not None and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return str(row[2])
        digest = sha256_file(path)
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                              (key, st.st_size, st.st_mtime_ns, digest))
        return digest

    # elements ------------------------------------------------------------------
    def add_element(self, eid: str, kind: str, path: str, source: str, meta: dict[str, Any],
                    selector: str, selector_name: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO elements VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "kind=excluded.kind, path=excluded.path, source=excluded.source, meta=excluded.meta",
                (eid, kind, path, source, json.dumps(meta), time.time()))
            self.conn.execute("INSERT OR IGNORE INTO selections VALUES (?, ?, ?)", (selector, selector_name, eid))

    def element(self, eid: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT id, kind, path, source, meta FROM elements WHERE id=?", (eid,)).fetchone()
        return None if row is None else _element(row)

    def elements(self, selector_name: str | None = None) -> list[dict[str, Any]]:
        """All elements (or those a selector of this name picked), in the order they were added."""
        if selector_name is None:
            rows = self.conn.execute("SELECT id, kind, path, source, meta FROM elements ORDER BY added, id")
        else:
            rows = self.conn.execute(
                "SELECT e.id, e.kind, e.path, e.source, e.meta FROM elements e JOIN selections s ON s.element=e.id "
                "WHERE s.name=? GROUP BY e.id ORDER BY e.added, e.id", (selector_name,))
        return [_element(r) for r in rows]

    # caches --------------------------------------------------------------------
    def cache_get(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM cache WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def cache_put(self, key: str, value: Any) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, json.dumps(value), time.time()))

    # tasks ---------------------------------------------------------------------
    def task(self, stage: str, inp: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT status, output, error, info, finished, seconds FROM tasks "
                                "WHERE stage=? AND input=?", (stage, inp)).fetchone()
        if row is None:
            return None
        return {"status": row[0], "output": row[1], "error": row[2], "info": json.loads(row[3] or "null"),
                "finished": row[4], "seconds": row[5]}

    def tasks(self, stage: str | None = None) -> Iterator[dict[str, Any]]:
        q = "SELECT stage, input, status, output, error, info, finished, seconds FROM tasks"
        args: tuple[Any, ...] = ()
        if stage is not None:
            q, args = q + " WHERE stage=?", (stage,)
        for r in self.conn.execute(q + " ORDER BY finished", args):
            yield {"stage": r[0], "input": r[1], "status": r[2], "output": r[3], "error": r[4],
                   "info": json.loads(r[5] or "null"), "finished": r[6], "seconds": r[7]}

    def record(self, stage: str, inp: str, status: str, output: str | None = None, error: str | None = None,
               info: Any = None, seconds: float | None = None) -> None:
        """Record a task's outcome (after its output is in place)."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (stage, inp, status, output, error, None if info is None else json.dumps(info),
                               time.time(), seconds))

    def forget(self, stage: str, inp: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM tasks WHERE stage=? AND input=?", (stage, inp))

    # chains --------------------------------------------------------------------
    def put_chain(self, cid: str, config: dict[str, Any]) -> None:
        now = time.time()
        with self.conn:
            self.conn.execute("INSERT INTO chains VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                              "updated=excluded.updated", (cid, json.dumps(config), now, now))


def _element(row: Iterable[Any]) -> dict[str, Any]:
    eid, kind, path, source, meta = row
    return {"id": eid, "kind": kind, "path": path, "source": source, **json.loads(meta)}


def clean_temporaries(folder: Path) -> int:
    """Remove what killed runs left half-written (``.tmp-`` folders and atomic-write temporaries) under
    ``stages/``, ``results/`` and ``media/``; call only while holding the folder lock."""
    n = 0
    for sub in ("stages", "results", "media"):
        root = folder / sub
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for d in list(dirnames):
                if TMP_MARK in d:
                    shutil.rmtree(Path(dirpath) / d, ignore_errors=True)
                    dirnames.remove(d)
                    n += 1
            for f in filenames:
                if f.startswith(".") and (f.endswith(".tmp") or TMP_MARK in f or ".part" in f):
                    (Path(dirpath) / f).unlink(missing_ok=True)
                    n += 1
    return n
