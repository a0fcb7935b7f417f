"""SQLite manifest: one row per unit of work, written by the driver alone."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    params TEXT,
    result TEXT,
    timings TEXT,
    error TEXT,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_status ON samples(status);
"""

DONE = "done"
FAILED = "failed"
PENDING = "pending"


class Manifest:
    """A job's record of work: ``meta`` key/values and one ``samples`` row per unit."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=30.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self.conn.commit()

    def close(self) -> None:
        """Checkpoint the WAL and close (a failed checkpoint, e.g. while an error unwinds, only leaves the
        WAL beside the database, which SQLite replays on the next open)."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        finally:
            self.conn.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # meta -----------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # samples --------------------------------------------------------------
    def ensure(self, ids_seeds: Iterable[tuple[int, int]]) -> None:
        """Insert pending rows for ids not yet present."""
        now = time.time()
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO samples(id, seed, status, updated) VALUES (?, ?, ?, ?)",
                [(int(i), int(s), PENDING, now) for i, s in ids_seeds],
            )

    def record(
        self,
        sample_id: int,
        status: str,
        params: Any = None,
        result: Any = None,
        timings: dict[str, float] | None = None,
        error: str | None = None,
        commit: bool = True,
    ) -> None:
        """Set a sample's outcome (called after its files are in place)."""
        self.conn.execute(
            "UPDATE samples SET status=?, params=?, result=?, timings=?, error=?, updated=? WHERE id=?",
            (
                status,
                None if params is None else json.dumps(params),
                None if result is None else json.dumps(result),
                None if timings is None else json.dumps(timings),
                error,
                time.time(),
                int(sample_id),
            ),
        )
        if commit:
            self.conn.commit()

    def commit(self) -> None:
        self.conn.commit()

    def ids_with_status(self, *statuses: str) -> list[int]:
        marks = ",".join("?" * len(statuses))
        rows = self.conn.execute(f"SELECT id FROM samples WHERE status IN ({marks}) ORDER BY id", statuses)
        return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) FROM samples GROUP BY status")
        return {s: n for s, n in rows}

    def rows(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows in id order, JSON columns decoded."""
        q = "SELECT id, seed, status, params, result, timings, error FROM samples"
        args: tuple[Any, ...] = ()
        if status is not None:
            q += " WHERE status=?"
            args = (status,)
        for r in self.conn.execute(q + " ORDER BY id", args):
            yield {
                "id": r[0],
                "seed": r[1],
                "status": r[2],
                "params": None if r[3] is None else json.loads(r[3]),
                "result": None if r[4] is None else json.loads(r[4]),
                "timings": None if r[5] is None else json.loads(r[5]),
                "error": r[6],
            }
