"""Executors map a pure, importable function over tasks: in-process, local process pool, or Ray.

Results come back in completion order as ``(task, result, error)``; the driver alone records them.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing as mp
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from simreal.errors import ConfigError, SimrealError

Outcome = tuple[Any, Any, str | None]


def _call(fn: Callable[[Any], Any], task: Any) -> tuple[Any, str | None]:
    try:
        return fn(task), None
    except Exception as exc:  # one bad element must not stop the batch
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, detail


def _init_worker(threads: int, fast_exit: bool = False) -> None:
    """One core per worker: cap the thread pools of numerical libraries before they load. With
    ``fast_exit`` the worker skips the interpreter's teardown when the pool closes."""
    import atexit
    import os

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if fast_exit:
        atexit.register(_exit_now)


def _exit_now() -> None:
    """End a pool worker at once. By the time atexit runs, multiprocessing has already run its own
    exit handler and every result has been sent; what remains (module teardown, a final garbage
    collection, freeing Mitsuba's plugins) takes about 0.5 s per worker and the driver waits for it."""
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)


def run_inline(fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Outcome]:
    """Run tasks one after another in this process."""
    for task in tasks:
        result, err = _call(fn, task)
        yield task, result, err


_BROKEN = ("a worker process died (out of memory, or a script that calls simreal without an `if __name__ == "
           "'__main__':` guard: worker processes re-import the main script); finished work is kept, rerun to "
           "resume, or use one worker")


def run_local(
    fn: Callable[[Any], Any], tasks: Iterable[Any], workers: int, max_tasks_per_child: int = 400,
    fast_exit: bool = False,
) -> Iterator[Outcome]:
    """Run tasks on spawn-started process pools, a bounded number in flight.

    Workers are retired after about ``max_tasks_per_child`` tasks (bounding any memory growth) by
    starting a fresh pool for every ``workers * max_tasks_per_child`` tasks. The executor's own
    ``max_tasks_per_child`` is not used: it deadlocks as soon as a worker retires while tasks are
    queued (CPython gh-115634, Python 3.11 to 3.14). ``fast_exit``: workers end without interpreter
    teardown (only for functions that leave nothing to clean up at exit)."""
    it = iter(tasks)
    while batch := list(itertools.islice(it, max(1, workers * max_tasks_per_child))):
        yield from _run_pool(fn, batch, workers, fast_exit)


def _run_pool(fn: Callable[[Any], Any], tasks: list[Any], workers: int, fast_exit: bool) -> Iterator[Outcome]:
    ctx = mp.get_context("spawn")
    pending: dict[cf.Future[tuple[Any, str | None]], Any] = {}
    it = iter(tasks)
    with cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(1, fast_exit),
    ) as pool:
        def submit_next() -> bool:
            try:
                task = next(it)
            except StopIteration:
                return False
            try:
                pending[pool.submit(_call, fn, task)] = task
            except BrokenProcessPool:
                raise SimrealError(_BROKEN) from None
            return True

        for _ in range(workers * 3):
            if not submit_next():
                break
        while pending:
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                try:
                    result, err = fut.result()
                except BrokenProcessPool:
                    raise SimrealError(_BROKEN) from None
                except Exception as exc:  # the task's result could not be returned
                    result, err = None, f"worker failed: {exc}"
                yield task, result, err
                submit_next()


def ray_gpus_check(resources: dict[str, float], num_gpus: float) -> None:
    """ConfigError unless a cluster with ``resources`` (``ray.cluster_resources()``) can run tasks asking for
    ``num_gpus`` GPUs each (Ray would wait for them forever)."""
    have = float(resources.get("GPU", 0.0))
    if num_gpus > 0 and have < num_gpus:
        raise ConfigError(f"--gpus-per-task {num_gpus:g}: the Ray cluster has {have:g} GPU(s); start GPU nodes "
                          "(ray start ... --num-gpus N) or render with a CPU variant")


def run_ray(
    fn: Callable[[Any], Any], tasks: Iterable[Any], workers: int, address: str | None = None, num_gpus: float = 0.0
) -> Iterator[Outcome]:
    """Run tasks on Ray: a local instance (``address=None``) or an existing cluster; each task asks for one
    CPU and ``num_gpus`` GPUs (a fraction shares a GPU between tasks)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the 'ray' extra: pip install 'simreal[ray]'") from None
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers
        ray.init(**kwargs)
        started = True
    try:
        ray_gpus_check(ray.cluster_resources(), num_gpus)
        remote = ray.remote(num_cpus=1, num_gpus=num_gpus)(_call)
        fn_ref = ray.put(fn)
        in_flight: dict[Any, Any] = {}
        it = iter(tasks)
        limit = max(workers, 1) * 3

        def submit_next() -> bool:
            try:
                task = next(it)
            except StopIteration:
                return False
            in_flight[remote.remote(fn_ref, task)] = task
            return True

        for _ in range(limit):
            if not submit_next():
                break
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                task = in_flight.pop(ref)
                try:
                    result, err = ray.get(ref)
                except Exception as exc:
                    result, err = None, f"ray task failed: {exc}"
                yield task, result, err
                submit_next()
    finally:
        if started:
            ray.shutdown()


def map_tasks(
    fn: Callable[[Any], Any],
    tasks: Iterable[Any],
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    num_gpus: float = 0.0,
    fast_exit: bool = False,
) -> Iterator[Outcome]:
    """Map ``fn`` over ``tasks`` with the named executor ("local" or "ray"); on Ray each task asks for
    ``num_gpus`` GPUs; ``fast_exit`` as in :func:`run_local`."""
    if workers < 1:
        raise ConfigError(f"--workers: expected a positive integer, got {workers}")
    if executor == "local":
        if workers == 1:
            return run_inline(fn, tasks)
        return run_local(fn, tasks, workers, fast_exit=fast_exit)
    if executor == "ray":
        return run_ray(fn, tasks, workers, address, num_gpus)
    raise ConfigError(f"--executor: expected 'local' or 'ray', got {executor!r}")
