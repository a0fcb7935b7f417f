"""Where the work runs: decoding workers (a bounded pool of local processes, Ray tasks, or this
process) and one scoring process per model, all reporting to the driver through one event queue.

Child processes watch their parent: if the driver dies (even by SIGKILL) they exit too.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import traceback
from collections.abc import Iterator
from typing import Any

from simreal.triage.scoring import ModelInfo, Scorer
from simreal.triage.work import element_messages

POLL_S = 0.2


def _die_with_parent(parent: int) -> None:
    """Exit when ``parent`` is gone: PR_SET_PDEATHSIG where Linux has it, and a polling thread."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        import time

        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def _limit_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def decode_main(parent: int, jobs: Any, events: Any) -> None:
    """A decoding worker: run jobs until a ``None`` job, streaming every message to ``events``."""
    _die_with_parent(parent)
    _limit_threads(1)
    while True:
        job = jobs.get()
        if job is None:
            _exit_now(events)
        for msg in element_messages(job):
            events.put(msg)


def _exit_now(events: Any) -> None:
    """Flush what this process queued, then exit without the slow interpreter teardown (torch)."""
    events.close()
    events.join_thread()
    os._exit(0)


def score_main(parent: int, index: int, info: ModelInfo, device: str, batch_size: int, threads: int, inbox: Any,
               events: Any) -> None:
    """A model's scoring process: batch incoming frames (across elements) and report their scores."""
    _die_with_parent(parent)
    _limit_threads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
        scorer = Scorer(info, device)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which stops the run
        events.put(("fatal", index, f"model {info.name!r}: {type(exc).__name__}: {exc}"))
        return
    events.put(("ready", index, str(scorer.device)))
    stop = False
    while not stop:
        items: list[tuple[str, int, Any]] = []
        msg = inbox.get()
        while True:
            if msg is None:
                stop = True
                break
            eid, chunk = msg
            items += [(eid, i, arr) for i, arr in chunk]
            if len(items) >= batch_size:
                break
            try:
                msg = inbox.get_nowait()
            except queue.Empty:
                break
        for start in range(0, len(items), batch_size):
            part = items[start:start + batch_size]
            try:
                res = scorer.score([a for _, _, a in part])
            except Exception:  # noqa: BLE001
                events.put(("fatal", index, f"model {info.name!r}: " + traceback.format_exc(limit=3)[-800:]))
                return
            events.put(("scores", index, [(eid, i, r) for (eid, i, _), r in zip(part, res, strict=True)]))
    _exit_now(events)


class Workers:
    """Decoding workers and scorers; the driver submits jobs and frames and reads ``events``."""

    def __init__(self, models: list[ModelInfo], workers: int, batch_size: int, device: str, executor: str = "local",
                 address: str | None = None, score_threads: int = 1) -> None:
        self.models = models
        self.batch_size = batch_size
        self.inline = workers == 0
        self.ctx = mp.get_context("spawn")
        self.events: Any = queue.Queue() if self.inline else self.ctx.Queue()
        self.procs: list[Any] = []
        self.scorer_procs: list[Any] = []
        self.inboxes: list[Any] = []
        self.scorers: list[Scorer] = []
        self._buffer: list[list[tuple[str, int, Any]]] = [[] for _ in models]
        self.executor = executor
        self._ray_jobs: queue.Queue[Any] | None = None
        parent = os.getpid()
        if self.inline:
            self.scorers = [Scorer(m, device) for m in models]
        else:
            for i, m in enumerate(models):
                inbox = self.ctx.Queue(maxsize=256)
                p = self.ctx.Process(target=score_main, args=(parent, i, m, device, batch_size, score_threads, inbox,
                                                              self.events), daemon=True)
                p.start()
                self.inboxes.append(inbox)
                self.scorer_procs.append(p)
            if executor == "ray":
                self._start_ray(max(1, workers), address)
            else:
                self.jobs = self.ctx.Queue()
                for _ in range(workers):
                    p = self.ctx.Process(target=decode_main, args=(parent, self.jobs, self.events), daemon=True)
                    p.start()
                    self.procs.append(p)

    # decoding -----------------------------------------------------------------
    def _start_ray(self, workers: int, address: str | None) -> None:
        from simreal.runtime.executors import map_tasks

        self._ray_jobs = queue.Queue()

        def feed() -> Iterator[dict[str, Any]]:
            assert self._ray_jobs is not None
            while True:
                job = self._ray_jobs.get()
                if job is None:
                    return
                yield job

        def pump() -> None:
            try:
                for job, msgs, err in map_tasks(_messages_list, feed(), "ray", workers, address):
                    if err is not None:
                        self.events.put(("error", job["eid"], "frames", f"ray task failed: {err}"))
                        continue
                    for m in msgs:
                        self.events.put(m)
            except Exception as exc:  # noqa: BLE001 - e.g. Ray cannot start: stop the run with the reason
                self.events.put(("fatal", -1, f"ray executor: {type(exc).__name__}: {exc}"))

        self._ray_thread = threading.Thread(target=pump, daemon=True)
        self._ray_thread.start()

    def submit(self, job: dict[str, Any]) -> None:
        """Start one element's frame work."""
        if self.inline:
            for msg in element_messages(job):
                self.events.put(msg)
        elif self._ray_jobs is not None:
            self._ray_jobs.put(job)
        else:
            self.jobs.put(job)

    def no_more_jobs(self) -> None:
        """Every job has been submitted (Ray's feed ends here)."""
        if self._ray_jobs is not None:
            self._ray_jobs.put(None)

    def dead_workers(self) -> list[tuple[int, int | None]]:
        """(pid, exit code) of decoding workers that died, replaced by fresh ones."""
        dead = []
        for k, p in enumerate(self.procs):
            if not p.is_alive():
                dead.append((p.pid, p.exitcode))
                q = self.ctx.Process(target=decode_main, args=(os.getpid(), self.jobs, self.events), daemon=True)
                q.start()
                self.procs[k] = q
        for k, p in enumerate(self.scorer_procs):
            if not p.is_alive() and p.exitcode not in (0, None):
                self.events.put(("fatal", k, f"model {self.models[k].name!r}: scoring process died "
                                             f"(exit code {p.exitcode})"))
        return dead

    # scoring ------------------------------------------------------------------
    def score(self, index: int, eid: str, chunk: list[tuple[int, Any]]) -> None:
        """Queue prepared frames of one element for model ``index``."""
        if self.inline:
            self._buffer[index] += [(eid, i, a) for i, a in chunk]
            if len(self._buffer[index]) >= self.batch_size:
                self.flush(index)
        else:
            self.inboxes[index].put((eid, chunk))

    def flush(self, index: int | None = None) -> None:
        """Inline mode: score what is buffered now."""
        for k in ([index] if index is not None else range(len(self.models))):
            buf, self._buffer[k] = self._buffer[k], []
            for s in range(0, len(buf), self.batch_size):
                part = buf[s:s + self.batch_size]
                res = self.scorers[k].score([a for _, _, a in part])
                self.events.put(("scores", k, [(eid, i, r) for (eid, i, _), r in zip(part, res, strict=True)]))

    def next_event(self, timeout: float = POLL_S) -> tuple[Any, ...] | None:
        try:
            return self.events.get(timeout=timeout) if not self.inline else self.events.get_nowait()
        except queue.Empty:
            if self.inline and any(self._buffer):
                self.flush()
                return self.next_event(timeout)
            return None

    def close(self, terminate: bool = False) -> None:
        """Stop everything (``terminate``: without waiting for queued work)."""
        if self.inline:
            return
        if self._ray_jobs is not None:
            self._ray_jobs.put(None)  # harmless when the feed already ended
        if terminate:
            for p in self.procs + self.scorer_procs:
                if p.is_alive():
                    p.terminate()
        else:
            for _ in self.procs:
                self.jobs.put(None)
            for inbox in self.inboxes:
                inbox.put(None)
        for p in self.procs + self.scorer_procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        if self._ray_jobs is not None:
            self._ray_thread.join(timeout=30)


def _messages_list(job: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Ray: one element's messages as a list (streamed per element rather than per chunk)."""
    return list(element_messages(job))

