"""The triage driver: select media, plan the missing work from the task table, stream frames from the
decoding workers to one scoring process per model, write every output atomically and record it.

Stage keys: ``frames-<hash>`` (Frames config), ``dedup-<hash>`` (Dedup config + frames key),
``score-<hash>`` (model content + options + upstream key). Outputs live under
``FOLDER/stages/<key>/<element id>``; results of a chain under ``FOLDER/results/<chain id>/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simreal.config import dump_config
from simreal.errors import ConfigError, SimrealError
from simreal.runtime.io import atomic_write_json, atomic_write_text
from simreal.runtime.progress import close_logger, folder_logger, make_progress
from simreal.triage.config import TriageConfig, load_triage_config
from simreal.triage.results import (
    CHAIN_SCHEMA,
    SCORES_SCHEMA,
    assemble,
    chain_dir,
    write_chain_outputs,
    write_element,
)
from simreal.triage.scoring import ModelInfo, describe_model
from simreal.triage.selectors import list_local, media_path, select
from simreal.triage.store import DB_NAME, DONE, FAILED, FolderLock, Store, clean_temporaries, stable_hash
from simreal.triage.work import read_frames_meta

STAGE_VERSION = 1  # bump when a stage's output for the same config changes


@dataclass
class TriageResult:
    """What a triage run did (element ids; skipped/failed as (source, reason))."""

    folder: Path
    chain: str
    results: Path
    done: list[str] = field(default_factory=list)
    reused: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    frames_scored: int = 0
    frames_decoded: int = 0
    seconds: float = 0.0

    @property
    def view_command(self) -> str:
        return f"simreal view {self.folder}"


@dataclass
class Keys:
    frames: str
    dedup: str | None
    scores: dict[str, str]
    chain: str


def stage_keys(cfg: TriageConfig, models: list[ModelInfo]) -> Keys:
    """Content-addressed keys of every stage of the chain."""
    frames = f"frames-{stable_hash({'v': STAGE_VERSION, 'cfg': cfg.frames.model_dump(mode='json')})}"
    up = frames
    dedup = None
    if cfg.dedup is not None:
        dedup = f"dedup-{stable_hash({'v': STAGE_VERSION, 'cfg': cfg.dedup.model_dump(mode='json'), 'up': up})}"
        up = dedup
    scores = {m.name: f"score-{stable_hash({'v': STAGE_VERSION, 'model': m.key, 'up': up})}" for m in models}
    chain = stable_hash({"frames": frames, "dedup": dedup, "scores": [scores[m.name] for m in models]})
    return Keys(frames, dedup, scores, chain)


def _read_json(p: Path, schema: str | None = None) -> Any:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if schema is not None and (not isinstance(doc, dict) or doc.get("schema") != schema):
        return None
    return doc


@dataclass
class _Pending:
    job: dict[str, Any]
    models: list[int]
    sent: dict[int, int]
    got: dict[int, dict[int, dict[str, Any]]]
    frames_meta: dict[str, Any] | None = None
    ended: bool = False
    pid: int | None = None
    t0: float = field(default_factory=time.perf_counter)


class _Driver:
    def __init__(self, cfg: TriageConfig, store: Store, folder: Path, models: list[ModelInfo], keys: Keys,
                 log: Any, progress: bool) -> None:
        self.cfg, self.store, self.folder, self.models, self.keys, self.log = cfg, store, folder, models, keys, log
        self.progress = progress
        self.by_name = {m.name: m for m in models}
        self.out = TriageResult(folder, keys.chain, chain_dir(folder, keys.chain))
        self.described = {m.name: m.describe() for m in models}

    # paths -------------------------------------------------------------------------
    def frames_dir(self, eid: str) -> Path:
        return self.folder / "stages" / self.keys.frames / eid

    def dedup_path(self, eid: str) -> Path:
        assert self.keys.dedup is not None
        return self.folder / "stages" / self.keys.dedup / f"{eid}.json"

    def score_path(self, name: str, eid: str) -> Path:
        return self.folder / "stages" / self.keys.scores[name] / f"{eid}.json"

    def result_path(self, eid: str) -> Path:
        return self.out.results / "elements" / f"{eid}.json"

    # planning ----------------------------------------------------------------------
    def _adopt(self, stage: str, eid: str, path: Path) -> None:
        """An output written by a run killed before it could record it: record it now."""
        t = self.store.task(stage, eid)
        if t is None or t["status"] != DONE:
            self.store.record(stage, eid, DONE, output=str(path.relative_to(self.folder)), info={"adopted": True})

    def plan(self, el: dict[str, Any]) -> dict[str, Any] | None:
        """None when every stage output of the element exists, else the decoding job for what is missing."""
        eid = el["id"]
        fmeta = read_frames_meta(self.frames_dir(eid), need_images=False)
        if fmeta is not None:
            self._adopt(self.keys.frames, eid, self.frames_dir(eid))
            if self.cfg.keep_frames and not fmeta.get("images"):
                fmeta = None  # frames were dropped by an earlier run and are wanted now: decode them again
        dedup_out = None
        if self.keys.dedup is not None:
            dedup_out = _read_json(self.dedup_path(eid), "simreal.triage.dedup/1")
            if dedup_out is not None:
                self._adopt(self.keys.dedup, eid, self.dedup_path(eid))
        missing = []
        for m in self.models:
            if _read_json(self.score_path(m.name, eid), SCORES_SCHEMA) is None:
                missing.append(m)
            else:
                self._adopt(self.keys.scores[m.name], eid, self.score_path(m.name, eid))
        if fmeta is not None and (self.keys.dedup is None or dedup_out is not None) and not missing:
            return None
        specs = {m.spec.key: m.spec for m in missing}
        return {"eid": eid, "kind": el["kind"], "path": str(media_path(el, self.folder)),
                "frames": self.cfg.frames.model_dump(mode="json"), "frames_dir": str(self.frames_dir(eid)),
                "frames_done": fmeta is not None and bool(fmeta.get("images")), "write_images": self.cfg.keep_frames,
                "dedup": self.cfg.dedup.model_dump(mode="json") if self.cfg.dedup else None,
                "dedup_path": str(self.dedup_path(eid)) if self.keys.dedup else None, "dedup_out": dedup_out,
                "specs": [{"size": list(s.size), "channels": s.channels, "resize_short": s.resize_short,
                           "mean": list(s.mean) if s.mean else None, "std": list(s.std) if s.std else None}
                          for s in specs.values()],
                "missing": [m.name for m in missing], "chunk": 16, "threads": 1}

    def earlier_failure(self, eid: str) -> dict[str, Any] | None:
        for stage in [self.keys.frames, self.keys.dedup, *self.keys.scores.values()]:
            if stage is None:
                continue
            t = self.store.task(stage, eid)
            if t is not None and t["status"] == FAILED:
                return t
        return None

    # results -----------------------------------------------------------------------
    def write_result(self, el: dict[str, Any]) -> None:
        eid = el["id"]
        fdir = self.frames_dir(eid)
        fmeta = read_frames_meta(fdir, need_images=False)
        assert fmeta is not None
        dedup = _read_json(self.dedup_path(eid)) if self.keys.dedup else None
        scores = {m.name: _read_json(self.score_path(m.name, eid)) for m in self.models}
        doc = assemble(el, fmeta, str(fdir.relative_to(self.folder)), dedup, scores, self.described, self.keys.chain,
                       self.cfg.frames.model_dump(mode="json"))
        write_element(self.folder, self.keys.chain, doc)

    def write_scores(self, st: _Pending, k: int, eid: str) -> None:
        m = self.active[k]
        assert st.frames_meta is not None
        h, w = m.spec.size
        sx = (st.frames_meta.get("width") or w) / w
        sy = (st.frames_meta.get("height") or h) / h
        frames = {}
        for i, r in sorted(st.got[k].items()):
            boxes = [[round(b[0] * sx, 2), round(b[1] * sy, 2), round(b[2] * sx, 2), round(b[3] * sy, 2),
                      round(b[4], 6), b[5]] for b in r["boxes"]]
            frames[str(i)] = {"s": [round(v, 6) for v in r["scores"]], **({"b": boxes} if boxes else {})}
        doc = {"schema": SCORES_SCHEMA, "model": m.name, "key": self.keys.scores[m.name], "labels": m.kept_labels,
               "frames": frames}
        p = self.score_path(m.name, eid)
        atomic_write_json(p, doc, indent=None)
        self.store.record(self.keys.scores[m.name], eid, DONE, output=str(p.relative_to(self.folder)),
                          info={"frames": len(frames)}, seconds=round(time.perf_counter() - st.t0, 4))

    # execution ---------------------------------------------------------------------
    def execute(self, elements: list[dict[str, Any]], jobs: dict[str, dict[str, Any]]) -> None:
        """Run the jobs: decoding workers stream frames here, they go on to each model's scorer, and
        every element's outputs are written and recorded as soon as all its frames are scored."""
        from simreal.runtime.device import resolve_device
        from simreal.triage.procs import Workers

        resolve_device(self.cfg.device, "device")  # only now: a rerun with nothing to do never imports torch
        cfg = self.cfg
        self.by_id = {el["id"]: el for el in elements}
        needed = {n for j in jobs.values() for n in j["missing"]}
        self.active = [m for m in self.models if m.name in needed]
        index = {m.name: k for k, m in enumerate(self.active)}
        workers = cfg.workers if cfg.workers is not None else (os.cpu_count() or 1)
        score_threads = max(1, ((os.cpu_count() or 1) - max(workers, 1)) // max(1, len(self.active)))
        self.pool = Workers(self.active, workers, cfg.batch_size, cfg.device, cfg.executor, cfg.address,
                            score_threads)
        queue_ = list(jobs.values())
        # fewer videos than workers (one long video, say): give each decoder the idle cores as threads
        threads = max(1, (os.cpu_count() or 1) // max(1, min(max(workers, 1), len(queue_))))
        self.pending: dict[str, _Pending] = {}
        # Ray's executor bounds the work in flight itself: give it every job at once, then say there are no more
        limit = len(queue_) if cfg.executor == "ray" else max(1, workers) * 2 + 1
        self.prog = make_progress("", disable=not self.progress)  # rates per row: elements/s, frames/s
        ok = False
        try:
            with self.prog:
                self.t_el = self.prog.add_task("elements", total=len(jobs))
                self.t_fr = self.prog.add_task("frames scored", total=None)
                while queue_ or self.pending:
                    while queue_ and len(self.pending) < limit:
                        job = queue_.pop(0)
                        job["chunk"] = cfg.batch_size if workers == 0 else 16
                        job["threads"] = threads
                        ks = [index[n] for n in job["missing"]]
                        self.pending[job["eid"]] = _Pending(job, ks, {k: 0 for k in ks}, {k: {} for k in ks})
                        self.pool.submit(job)
                        if not queue_:
                            self.pool.no_more_jobs()
                    msg = self.pool.next_event()
                    if msg is None:
                        self._check_workers()
                    else:
                        self._on_message(msg)
            ok = True
        finally:
            self.pool.close(terminate=not ok)

    def _check_workers(self) -> None:
        for pid, code in self.pool.dead_workers():
            for eid, st in list(self.pending.items()):
                if st.pid == pid:
                    self._fail(eid, self.keys.frames, f"decoding worker died (exit code {code})")

    def _on_message(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "fatal":
            raise SimrealError(f"triage: {msg[2]}")
        if kind == "ready":
            self.log.info("model %s on %s", self.active[msg[1]].name, msg[2])
        elif kind == "scores":
            self._on_scores(msg[1], msg[2])
        elif msg[1] in self.pending:
            getattr(self, f"_on_{kind}")(self.pending[msg[1]], *msg[1:])

    def _on_start(self, st: _Pending, eid: str, pid: int) -> None:
        st.pid = pid

    def _on_chunk(self, st: _Pending, eid: str, chunk: list[tuple[int, dict[str, Any]]]) -> None:
        for k in st.models:
            key = self.active[k].spec.key
            part = [(i, arrs[key]) for i, arrs in chunk]
            st.sent[k] += len(part)
            self.pool.score(k, eid, part)

    def _on_frames(self, st: _Pending, eid: str, meta: dict[str, Any], written: bool) -> None:
        st.frames_meta = meta
        if written:
            self.out.frames_decoded += len(meta["frames"])
            info = {k: meta.get(k) for k in ("decoded", "seeks", "duration")} | {"frames": len(meta["frames"])}
            self.store.record(self.keys.frames, eid, DONE, output=str(self.frames_dir(eid).relative_to(self.folder)),
                              info=info, seconds=meta.get("seconds"))

    def _on_dedup(self, st: _Pending, eid: str, out: dict[str, Any], written: bool) -> None:
        if written:
            assert self.keys.dedup is not None
            self.store.record(self.keys.dedup, eid, DONE, output=str(self.dedup_path(eid).relative_to(self.folder)),
                              info={"kept": len(out["kept"])})

    def _on_end(self, st: _Pending, eid: str, sent: int) -> None:
        st.ended = True
        self._maybe_finish(eid)

    def _on_error(self, st: _Pending, eid: str, stage: str, reason: str) -> None:
        key = {"frames": self.keys.frames, "dedup": self.keys.dedup}.get(stage) or self.keys.frames
        self._fail(eid, key, reason)

    def _on_scores(self, k: int, items: list[tuple[str, int, dict[str, Any]]]) -> None:
        touched = set()
        for eid, i, r in items:
            st = self.pending.get(eid)
            if st is not None:
                st.got[k][i] = r
                touched.add(eid)
        self.prog.advance(self.t_fr, len(items) / max(1, len(self.active)))
        self.out.frames_scored += len(items)
        for eid in touched:
            self._maybe_finish(eid)

    def _fail(self, eid: str, stage: str, reason: str) -> None:
        self.pending.pop(eid, None)
        self.store.record(stage, eid, FAILED, error=reason)
        el = self.store.element(eid)
        self.out.failed.append((el["source"] if el else eid, reason))
        self.log.warning("failed %s: %s", eid, reason)
        self.prog.advance(self.t_el)

    def _maybe_finish(self, eid: str) -> None:
        st = self.pending[eid]
        if not st.ended or any(len(st.got[k]) < st.sent[k] for k in st.models):
            return
        for k in st.models:
            self.write_scores(st, k, eid)
        self.write_result(self.by_id[eid])
        self.pending.pop(eid)
        self.out.done.append(eid)
        n = len(st.frames_meta["frames"]) if st.frames_meta else 0
        self.log.info("done %s (%s): %d frames in %.2fs", eid, self.by_id[eid].get("title"), n,
                      time.perf_counter() - st.t0)
        self.prog.advance(self.t_el)


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"folder: {folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / DB_NAME).is_file():
        raise ConfigError(f"folder: {folder} exists and is not a triage folder (no {DB_NAME}); use a new folder")


def run(config: str | Path | dict[str, Any] | TriageConfig, *, folder: str | Path | None = None,
        workers: int | None = None, batch_size: int | None = None, device: str | None = None,
        executor: str | None = None, address: str | None = None, keep_frames: bool | None = None,
        retry_failed: bool | None = None, overrides: dict[str, Any] | None = None, progress: bool = True,
        warn: Callable[[str], None] | None = None) -> TriageResult:
    """Run (or resume) a triage: ``config`` is a YAML path, a dict or a TriageConfig; keyword arguments
    override the config. Returns what was done; results are in ``FOLDER/results/<chain>/``."""
    t_start = time.perf_counter()
    over = dict(overrides or {})
    for key, val in (("folder", str(folder) if folder is not None else None), ("workers", workers),
                     ("batch_size", batch_size), ("device", device), ("executor", executor), ("address", address),
                     ("keep_frames", keep_frames), ("retry_failed", retry_failed)):
        if val is not None:
            over[key] = val
    if isinstance(config, TriageConfig):
        config = config.model_dump(mode="json")
    cfg = load_triage_config(config, over, warn)
    for m in cfg.models:  # bad models fail before anything is written
        describe_model(m, lambda p: "")
    if cfg.select is not None and cfg.select.name == "Local":
        files, _ = list_local(cfg.select.config, Path(cfg.folder))  # type: ignore[arg-type]
        if not files:
            raise ConfigError(f"select.config.paths: no video or image files in {', '.join(cfg.select.config.paths)}"
                              )  # type: ignore[union-attr]
    folder_p = Path(cfg.folder)
    _check_folder(folder_p)
    with FolderLock(folder_p), Store(folder_p) as store:
        log = folder_logger(folder_p, "triage")
        try:
            return _run_locked(cfg, store, folder_p, log, progress, t_start)
        finally:
            close_logger(log)


def _run_locked(cfg: TriageConfig, store: Store, folder: Path, log: Any, progress: bool,
                t_start: float) -> TriageResult:
    n_tmp = clean_temporaries(folder)
    if n_tmp:
        log.info("removed %d half-written temporaries of an interrupted run", n_tmp)
    atomic_write_text(folder / "config.yaml", dump_config(cfg))
    models = [describe_model(m, store.file_hash) for m in cfg.models]
    keys = stage_keys(cfg, models)
    drv = _Driver(cfg, store, folder, models, keys, log, progress)
    log.info("run: chain %s, stages %s", keys.chain, json.dumps(keys.__dict__))
    sel = select(cfg, store, folder, log.warning)
    drv.out.skipped += sel.skipped
    drv.out.failed += sel.failed
    if not sel.elements:
        first = (sel.failed or sel.skipped or [("", "")])[0]
        raise ConfigError(f"select: no media selected ({len(sel.skipped)} skipped, {len(sel.failed)} failed"
                          + (f"; e.g. {first[0]}: {first[1]}" if first[0] else "") + ")")
    store.put_chain(keys.chain, cfg.model_dump(mode="json"))
    jobs: dict[str, dict[str, Any]] = {}
    for el in sel.elements:
        prior = drv.earlier_failure(el["id"])
        if prior is not None and not cfg.retry_failed:
            drv.out.failed.append((el["source"], prior["error"] or "failed"))
            continue
        job = drv.plan(el)
        if job is None:
            if not drv.result_path(el["id"]).is_file():
                drv.write_result(el)
            drv.out.done.append(el["id"])
            drv.out.reused += 1
        else:
            jobs[el["id"]] = job
    if jobs:
        drv.execute(sel.elements, jobs)
    out = drv.out
    out.seconds = time.perf_counter() - t_start
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    old = _read_json(chain_dir(folder, keys.chain) / "chain.json") or {}
    chain_meta = {"schema": CHAIN_SCHEMA, "id": keys.chain, "created": old.get("created", now), "updated": now,
                  "stages": {"frames": keys.frames, "dedup": keys.dedup, "scores": keys.scores},
                  "models": drv.described, "sampling": cfg.frames.model_dump(mode="json"),
                  "dedup": cfg.dedup.model_dump(mode="json") if cfg.dedup else None,
                  "rank": cfg.rank.model_dump(mode="json"), "config": cfg.model_dump(mode="json")}
    summary = {"schema": "simreal.triage.summary/1", "chain": keys.chain, "finished": now,
               "seconds": round(out.seconds, 3), "selected": len(sel.elements), "done": out.done,
               "reused": out.reused, "frames_decoded": out.frames_decoded, "frames_scored": out.frames_scored,
               "skipped": [{"source": s, "reason": r} for s, r in out.skipped],
               "failed": [{"source": s, "reason": r} for s, r in out.failed]}
    write_chain_outputs(folder, chain_meta, summary)
    log.info("finished in %.2fs: %d done (%d reused), %d skipped, %d failed", out.seconds, len(out.done),
             out.reused, len(out.skipped), len(out.failed))
    return out
