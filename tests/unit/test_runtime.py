"""Runtime services: seeding, atomic writes, manifest, executors, config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simreal.config import StrictModel, load_config
from simreal.errors import ConfigError
from simreal.runtime.executors import map_tasks, run_local
from simreal.runtime.io import atomic_path, atomic_write_json, read_json
from simreal.runtime.manifest import DONE, FAILED, Manifest
from simreal.runtime.seeding import sample_rng, sample_seed, sample_seed_sequence


def test_sample_seed_sequence_equals_spawn() -> None:
    spawned = np.random.SeedSequence(42).spawn(6)
    for i in range(6):
        assert sample_seed_sequence(42, i).generate_state(4).tolist() == spawned[i].generate_state(4).tolist()
    assert sample_rng(42, 3).random() == sample_rng(42, 3).random()
    assert sample_seed(42, 3) != sample_seed(42, 4)
    assert sample_rng(42, 3, stream=1).random() != sample_rng(42, 3).random()


def test_atomic_write_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_manifest_records_and_resumes(tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.sqlite") as m:
        m.ensure([(0, 10), (1, 11), (2, 12)])
        m.record(0, DONE, params={"a": 1}, result=[1], timings={"total": 0.5})
        m.record(2, FAILED, error="bad element")
        m.set_meta("config_hash", "abc")
    with Manifest(tmp_path / "m.sqlite") as m:
        m.ensure([(0, 99), (3, 13)])  # existing rows are never overwritten
        assert m.ids_with_status(DONE) == [0]
        assert m.counts() == {"done": 1, "failed": 1, "pending": 2}
        rows = {r["id"]: r for r in m.rows()}
        assert rows[0]["seed"] == 10 and rows[0]["params"] == {"a": 1} and rows[2]["error"] == "bad element"
        assert m.get_meta("config_hash") == "abc"


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x * x


@pytest.mark.parametrize("workers", [1, 2])
def test_map_tasks_records_failures_and_goes_on(workers: int) -> None:
    out = {task: (res, err) for task, res, err in map_tasks(_square, range(6), "local", workers)}
    assert {t: r for t, (r, e) in out.items() if e is None} == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}
    assert "three is bad" in out[3][1]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fast_exit", [False, True])
def test_workers_are_retired_without_deadlock(fast_exit: bool) -> None:
    """More tasks than workers * max_tasks_per_child: the workers are replaced and every result
    arrives (ProcessPoolExecutor's own max_tasks_per_child hangs here on Python 3.11, gh-115634);
    workers that end without interpreter teardown still send every result."""
    out = {task: (res, err) for task, res, err in run_local(_square, range(10), 2, max_tasks_per_child=2,
                                                            fast_exit=fast_exit)}
    assert {t: r for t, (r, e) in out.items() if e is None} == {x: x * x for x in range(10) if x != 3}
    assert "three is bad" in out[3][1]


def test_map_tasks_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="--workers"):
        map_tasks(_square, [1], "local", 0)
    with pytest.raises(ConfigError, match="--executor"):
        map_tasks(_square, [1], "dask", 1)


class _Inner(StrictModel):
    size: int = 1


class _Cfg(StrictModel):
    inner: _Inner = _Inner()
    items: list[_Inner] = []


def test_config_errors_name_file_and_key(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("inner: {size: 2}\n")
    assert load_config(_Cfg, p).inner.size == 2
    assert load_config(_Cfg, p, {"inner.size": 5}).inner.size == 5
    p.write_text("inner: {sise: 2}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: inner.sise: unknown key"):
        load_config(_Cfg, p)
    p.write_text("items: [{size: x}]\n")
    with pytest.raises(ConfigError, match=r"items\[0\].size"):
        load_config(_Cfg, p)
    p.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_Cfg, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(_Cfg, tmp_path / "none.yaml")
