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


def test_checkpoint_moves_across_dtypes_and_devices(tmp_path: Path) -> None:
    """A checkpoint written from a float64 model holds host tensors and resumes a float32 model: parameters
    and Adam moments are cast to the parameters' dtype by the same loading code that moves them to the
    parameters' device (Optimizer.load_state_dict), so a GPU run resumes on a CPU and back."""
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    a = _net().double()
    opt_a = torch.optim.Adam(a.parameters(), 1e-2)
    for i in range(3):
        opt_a.zero_grad()
        a(torch.full((2, 4), float(i), dtype=torch.float64)).pow(2).sum().backward()
        opt_a.step()
    a[0].weight.data = a[0].weight.data.t().contiguous().t()  # a non-contiguous parameter is saved contiguous
    ck = store.save_checkpoint(3, {"model": a}, {"opt": opt_a})
    from safetensors.torch import load_file

    raw = load_file(str(ck.path))
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in raw.values())
    assert raw["model.0.weight"].dtype == torch.float64
    b = _net()
    opt_b = torch.optim.Adam(b.parameters(), 1e-2)
    store.load_checkpoint(ck, {"model": b}, {"opt": opt_b}, map_location="cpu")
    assert b[0].weight.dtype == torch.float32
    assert torch.allclose(b[0].weight.double(), a[0].weight, atol=1e-7)
    m = opt_b.state[b[0].weight]["exp_avg"]
    assert m.dtype == torch.float32 and torch.allclose(m.double(), opt_a.state[a[0].weight]["exp_avg"], atol=1e-7)


def test_follower_reads_but_writes_nothing(tmp_path: Path) -> None:
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    net = _net()
    store.save_checkpoint(1, {"model": net})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    f = store.follower()
    assert f.latest_checkpoint() is not None and f.latest_checkpoint().step == 1  # reads
    f.load_checkpoint(f.latest_checkpoint(), {"model": _net()})
    f.save_checkpoint(2, {"model": net})
    f.save_model("final", net, {"a": 1})
    f.log_metrics({"step": 2})
    f.save_sample("x.png", b"png")
    f.update_info(extra=1)
    f.truncate_metrics(0)
    f.logger("train").info("not written")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert "extra" not in json.loads((tmp_path / "r" / "run.json").read_text())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_checkpoint_resumes_on_the_cpu_and_back(tmp_path: Path) -> None:
    store, _ = RunStore.prepare(tmp_path / "r", "toy", Cfg())
    a = _net().cuda()
    opt_a = torch.optim.Adam(a.parameters(), 1e-2)
    _steps(a, opt_a, 0, 3)
    ck = store.save_checkpoint(3, {"model": a}, {"opt": opt_a})
    b = _net()
    opt_b = torch.optim.Adam(b.parameters(), 1e-2)
    store.load_checkpoint(ck, {"model": b}, {"opt": opt_b})
    assert all(p.device.type == "cpu" for p in b.parameters())
    assert opt_b.state[next(b.parameters())]["exp_avg"].device.type == "cpu"
    c = _net().cuda()
    opt_c = torch.optim.Adam(c.parameters(), 1e-2)
    store.load_checkpoint(ck, {"model": c}, {"opt": opt_c})
    assert opt_c.state[next(c.parameters())]["exp_avg"].device.type == "cuda"
