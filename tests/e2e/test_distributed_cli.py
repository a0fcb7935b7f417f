"""Data-parallel training end to end on the CPU with 2 gloo processes (``--nproc 2``, torchrun): the loss
curve and the weights equal one process with the same global batch; only rank 0 writes; a killed rank stops
the job, a killed launcher takes its workers with it, and the run resumes with another number of processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from simreal.cli.main import main

from .test_refine_cli import make_dataset
from .test_train_cli import _config, _folder

pytestmark = pytest.mark.slow
LOSS_KEYS = ("loss", "task_loss", "domain_loss", "disc_acc/0", "disc_acc/1", "select/source_val", "lr")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("ddp")
    return {"syn": _folder(t / "syn", ["a", "b"], 12, 0.0, 1), "real": _folder(t / "real", ["a", "b"], 10, 0.2, 2)}


def _simreal(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simreal", *args], capture_output=True, text=True, timeout=timeout)


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _same_curve(a: Path, b: Path, keys: tuple[str, ...] = LOSS_KEYS, tol: float = 1e-5) -> None:
    ra, rb = _records(a), _records(b)
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb, strict=True):
        assert x.get("step", x.get("iteration")) == y.get("step", y.get("iteration"))
        for k in keys:
            if k in x:
                assert abs(x[k] - y[k]) <= tol * max(1.0, abs(x[k])), (x.get("step"), k, x[k], y[k])


def _same_tensors(a: Path, b: Path, atol: float = 1e-5, skip: str | None = None) -> None:
    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        if skip and skip in k:
            continue
        assert np.allclose(ta[k].float().numpy(), tb[k].float().numpy(), atol=atol), k


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


@pytest.mark.parametrize("method", ["dann", "adda"])
def test_two_processes_give_the_curve_of_one(tmp_path: Path, data: dict[str, Path], method: str) -> None:
    """Same seed, same global batch (8 per domain: 4 per rank): the logged losses, the selection scores and
    the final weights equal one process's (SyncBatchNorm makes BatchNorm see the global batch too)."""
    cfg = _config(tmp_path, method, data["syn"], data["real"])
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "--config", str(cfg), "--out", str(one), "--device", "cpu", "-q"]) == 0
    res = _simreal("train", "--config", str(cfg), "--out", str(two), "--device", "cpu", "--nproc", "2", "-q")
    assert res.returncode == 0, res.stderr[-2000:]
    step = json.loads((one / "summary.json").read_text())["selection"]["step"]
    assert [ln for ln in res.stdout.splitlines() if ln.startswith("run:")] == [  # printed once, by rank 0
        f"run: {two}  selection: source_val (step {step})  report: {two / 'report.md'}"]
    assert json.loads((one / "summary.json").read_text()) == json.loads((two / "summary.json").read_text())
    _same_curve(one, two)
    _same_tensors(one / "checkpoints/final.safetensors", two / "checkpoints/final.safetensors")
    # rank 0 alone wrote: the same files, each line once
    assert _files(one) == _files(two)
    log_one, log_two = (one / "log.txt").read_text().splitlines(), (two / "log.txt").read_text().splitlines()
    assert len(log_one) == len(log_two) and "processes=2" in log_two[0] and "processes=1" in log_one[0]


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _rank_pid(launcher: int, rank: int, timeout: float = 60.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for c in _children(launcher):
            try:
                env = (Path("/proc") / str(c) / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in env:
                return c
        time.sleep(0.05)
    raise AssertionError(f"no worker of rank {rank}")


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path, after: int, timeout: float = 300.0) -> int:
    t0 = time.monotonic()
    while True:
        steps = [int(p.stem[5:]) for p in (run / "checkpoints").glob("step_*.json")] if (run / "checkpoints").is_dir() \
            else []
        if steps and max(steps) > after:
            return max(steps)
        assert proc.poll() is None, f"the job ended early: {proc.stderr.read()[-1500:] if proc.stderr else ''}"
        assert time.monotonic() - t0 < timeout, "no checkpoint in time"
        time.sleep(0.01)


def test_killed_rank_stops_the_job_then_it_resumes_with_another_world_size(tmp_path: Path,
                                                                          data: dict[str, Path]) -> None:
    # mixed (no adversary: DANN's min-max game amplifies rounding differences over hundreds of steps)
    cfg = _config(tmp_path, "mixed", data["syn"], data["real"]).read_text()
    cfg = cfg.replace("optim: {steps: 30, batch_per_domain: 8}", "optim: {steps: 300, batch_per_domain: 8}")
    (tmp_path / "long.yaml").write_text(cfg)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", "--config", str(tmp_path / "long.yaml"), "--out", str(full), "--device", "cpu", "-q"]) == 0
    cmd = [sys.executable, "-m", "simreal", "train", "--config", str(tmp_path / "long.yaml"), "--out", str(part),
           "--device", "cpu", "--nproc", "2", "-q"]

    # 1. SIGKILL rank 1: every rank stops, the launcher says so in one line and exits 1
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        rank1 = _rank_pid(proc.pid, 1)
        rank0 = _rank_pid(proc.pid, 0)
        first = _wait_for_checkpoint(proc, part, 0)
        os.kill(rank1, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-1500:]
    assert "rank 1 of 2 stopped (signal 9)" in err and "resume" in err
    assert not _alive(rank0) and not (part / "checkpoints/final.safetensors").exists()
    assert not list(part.rglob("*.tmp*")), "a half-written file was left behind"

    # 2. SIGKILL the launcher itself: its workers die with it (nothing keeps writing into the run)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        workers = [_rank_pid(proc.pid, r) for r in (0, 1)]
        _wait_for_checkpoint(proc, part, first)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    t0 = time.monotonic()
    while any(_alive(w) for w in workers) and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "workers outlived their launcher"
    assert not (part / "checkpoints/final.safetensors").exists(), "the job finished before the kill; make it longer"

    # 3. resume in one process: the run ends as the uninterrupted one
    assert main(["train", "--config", str(tmp_path / "long.yaml"), "--out", str(part), "--device", "cpu", "-q"]) == 0
    assert (part / "log.txt").read_text().count("resuming from step_") == 2
    # 300 steps: summation orders differ between 1 and 2 processes, so float32 rounding drifts a little
    _same_curve(full, part, tol=1e-4)
    _same_tensors(full / "checkpoints/final.safetensors", part / "checkpoints/final.safetensors", atol=1e-4)


def test_bad_config_under_nproc_is_one_line(tmp_path: Path, data: dict[str, Path]) -> None:
    cfg = _config(tmp_path, "dann", data["syn"], data["real"]).read_text()
    (tmp_path / "odd.yaml").write_text(cfg.replace("batch_per_domain: 8", "batch_per_domain: 7"))
    res = _simreal("train", "--config", str(tmp_path / "odd.yaml"), "--out", str(tmp_path / "r"), "--device", "cpu",
                   "--nproc", "2")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == ["simreal: error: optim.batch_per_domain: 7 is not divisible by the 2 processes (it is the global "
                     "batch, split evenly over ranks)"], res.stderr[-1500:]


def test_refine_two_processes_give_the_curve_of_one(tmp_path: Path) -> None:
    """CycleGAN, global batch 2 (1 per rank), no image pool: every loss is a mean of per-image terms, so 2
    processes log the curve of one; the sample grids are written once, by rank 0."""
    src = make_dataset(tmp_path / "syn", n=4, seed=0)
    tgt = make_dataset(tmp_path / "real", n=4, color=(60, 60, 200), seed=1, domain="real")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("net: {ngf: 4, ndf: 4, n_blocks: 1}\ndata: {crop_size: 24}\n"
                   "train: {epochs: 1, epochs_decay: 1, num_samples: 2, log_every: 1, pool_size: 0, batch_size: 2}\n")
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--source", str(src), "--target", str(tgt), "--config", str(cfg), "--device", "cpu", "-q"]
    assert main(["refine", "train", *common, "--out", str(one)]) == 0
    res = _simreal("refine", "train", *common, "--out", str(two), "--nproc", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(res.stdout.strip().splitlines()) == 1
    _same_curve(one, two, keys=("G", "G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B"), tol=1e-4)
    ck = sorted((one / "checkpoints").glob("step_*.safetensors"))[-1].name
    # conv biases in front of an instance norm have a zero gradient up to rounding, which Adam scales to
    # lr-sized steps: they are noise in either run, so only the weights are compared
    _same_tensors(one / "checkpoints" / ck, two / "checkpoints" / ck, atol=1e-4, skip=".bias")
    assert _files(one) == _files(two)
    assert res.returncode == 0 and "2 process(es)" in (two / "log.txt").read_text()
