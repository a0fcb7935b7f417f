"""The one run store: resume refusal with the first differing key, volatile keys, another kind of run,
keep-last-k, unfinished checkpoints ignored, a torn metrics line, optimiser state round trip that
continues training exactly, device-agnostic tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pydantic import Field

from simreal.config import StrictModel
from simreal.errors import RunError, WeightsError
from simreal.runtime.runstore import RunStore, read_jsonl


class Inner(StrictModel):
    lr: float = Field(0.1, description="lr")
    threads: int = Field(1, description="threads")


class Cfg(StrictModel):
    steps: int = Field(3, description="steps")
    inner: Inner = Field(default_factory=Inner, description="inner")


def test_new_run_then_resume_same_config(tmp_path: Path) -> None:
    store, resumed = RunStore.prepare(tmp_path / "r", "toy", Cfg(), info={"channels": 3})
    assert not resumed and store.info["kind"] == "toy" and store.info["channels"] == 3
    assert json.loads((tmp_path / "r" / "run.json").read_text())["simreal_version"]
    again, resumed = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    assert resumed and again.config(Cfg) == Cfg()


def test_different_config_refused_naming_the_key_volatile_allowed(tmp_path: Path) -> None:
    RunStore.prepare(tmp_path / "r", "toy", Cfg())
    with pytest.raises(RunError, match=r"first difference: inner\.lr"):
        RunStore.prepare(tmp_path / "r", "toy", Cfg(inner=Inner(lr=0.2)))
    _, resumed = RunStore.prepare(tmp_path / "r", "toy", Cfg(inner=Inner(threads=4)), volatile=("inner.threads",))
    assert resumed
    assert RunStore.open(tmp_path / "r").config(Cfg).inner.threads == 4  # the config this session runs with


def test_other_kind_and_foreign_folders_refused(tmp_path: Path) -> None:
    RunStore.prepare(tmp_path / "r", "train", Cfg())
    with pytest.raises(RunError, match="kind 'train', expected a 'refine' run"):
        RunStore.prepare(tmp_path / "r", "refine", Cfg())
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "precious.txt").write_text("keep")
    with pytest.raises(RunError, match="not a simreal run folder"):
        RunStore.prepare(tmp_path / "x", "train", Cfg())
    assert (tmp_path / "x" / "precious.txt").read_text() == "keep"
    with pytest.raises(RunError, match="run folder not found"):
        RunStore.open(tmp_path / "missing")


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))


def _steps(net: torch.nn.Module, opt: torch.optim.Optimizer, start: int, stop: int) -> None:
    for i in range(start, stop):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(16, 4, generator=g)
        loss = (net(x).squeeze(1) - x.sum(1)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_checkpoint_round_trip_continues_training_exactly(tmp_path: Path) -> None:
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    a = _net()
    opt_a = torch.optim.Adam(a.parameters(), 1e-2)
    _steps(a, opt_a, 0, 5)
    store.save_checkpoint(5, {"model": a}, {"opt": opt_a}, extra={"ema": torch.ones(3)}, meta={"epoch": 1})
    _steps(a, opt_a, 5, 10)
    b = _net()
    opt_b = torch.optim.Adam(b.parameters(), 1e-2)
    ck = store.latest_checkpoint()
    assert ck is not None and ck.step == 5 and ck.meta["epoch"] == 1 and ck.meta["optimizers"] == ["opt"]
    extra = store.load_checkpoint(ck, {"model": b}, {"opt": opt_b})
    assert torch.equal(extra["ema"], torch.ones(3))
    _steps(b, opt_b, 5, 10)  # Adam moments and step counts restored: the same trajectory
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_keep_last_k_and_unfinished_checkpoints(tmp_path: Path) -> None:
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    net = _net()
    for step in (1, 2, 3, 4):
        store.save_checkpoint(step, {"m": net}, keep=2)
    assert [c.step for c in store.checkpoints()] == [3, 4]
    assert sorted(p.name for p in store.ck.iterdir()) == ["step_00000003.json", "step_00000003.safetensors",
                                                           "step_00000004.json", "step_00000004.safetensors"]
    (store.ck / "step_00000004.json").unlink()  # killed between the tensors and the metadata
    (store.ck / "step_00000005.safetensors").write_bytes(b"partial")
    assert [c.step for c in store.checkpoints()] == [3]


def test_checkpoint_that_does_not_fit_names_the_file(tmp_path: Path) -> None:
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    store.save_checkpoint(1, {"m": _net()})
    with pytest.raises(WeightsError, match=r"step_00000001.safetensors \(m\).*does not fit"):
        store.load_checkpoint(store.latest_checkpoint(), {"m": torch.nn.Linear(4, 2)})


def test_torn_metrics_line_is_skipped_and_truncated(tmp_path: Path) -> None:
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    for s in (10, 20, 30):
        store.log_metrics({"step": s, "loss": 1.0 / s})
    with open(store.metrics_path, "a") as fh:
        fh.write('{"step": 40, "lo')  # the writer was killed mid-line
    assert [r["step"] for r in store.read_metrics()] == [10, 20, 30]
    store.truncate_metrics(20)
    assert [r["step"] for r in read_jsonl(store.metrics_path)] == [10, 20]
    assert store.metrics_path.read_text().endswith("\n")


def test_named_models_are_safetensors_with_json(tmp_path: Path) -> None:
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    net = _net()
    store.save_model("final", net, {"classes": ["a"]})
    state, meta = store.load_model_state("final")
    assert meta == {"classes": ["a"]} and state.keys() == net.state_dict().keys()
    with pytest.raises(RunError, match="no best model"):
        store.load_model_state("best")
