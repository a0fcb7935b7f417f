"""End to end: simreal train / eval on tiny image folders (synthetic vs real-ish domains)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simreal.cli.main import main


def _folder(root: Path, classes: list[str], n: int, shift: float, seed: int, labelled: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    for ci, c in enumerate(classes):
        d = root / c if labelled else root
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.normal(0.3 + shift, 0.05, (16, 16, 3))
            img[:, :, ci % 3] += 0.4  # class = dominant channel
            Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(d / f"{c}_{i}.png")
    return root


def _config(tmp: Path, method: str, syn: Path, real: Path, extra: str = "") -> Path:
    cfg = tmp / f"{method}.yaml"
    cfg.write_text(f"""task: classify
seed: 0
data:
  image_size: [16, 16]
  channels: 3
  domains:
    - {{path: {syn}, name: synthetic, role: source}}
    - {{path: {real}, name: real, role: target, labelled: false}}
model: {{arch: smallcnn, width: 8}}
method: {{name: {method}, adda_steps: 10, finetune_steps: 10, disc_hidden: [16]}}
optim: {{steps: 30, batch_per_domain: 8}}
selection: {{policy: source_val, eval_every: 10}}
checkpoint_every: 10
{extra}""")
    return cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("data")
    return {"syn": _folder(t / "syn", ["a", "b"], 12, 0.0, 1), "real": _folder(t / "real", ["a", "b"], 10, 0.2, 2),
            "real_flat": _folder(t / "flat", ["a", "b"], 5, 0.2, 3, labelled=False),
            "other": _folder(t / "other", ["a", "c"], 4, 0.0, 4)}


@pytest.mark.parametrize("method", ["dann", "adda"])
def test_train_then_eval(tmp_path: Path, data: dict[str, Path], method: str) -> None:
    run = tmp_path / "run"
    assert main(["train", "--config", str(_config(tmp_path, method, data["syn"], data["real"])), "--out", str(run),
                 "--quiet", "--device", "cpu"]) == 0
    for f in ("config.yaml", "metrics.jsonl", "report.md", "log.txt", "checkpoints/final.safetensors",
              "checkpoints/final.json", "loss.png"):
        assert (run / f).is_file(), f
    assert "no target labels used" in (run / "report.md").read_text()
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    if method == "dann":
        assert any("disc_acc/0" in r and "disc_acc/1" in r for r in recs)
    assert main(["eval", "--run", str(run), "--data", str(data["real"]), "--device", "cpu"]) == 0
    rep = run / "eval" / "real"
    m = json.loads((rep / "metrics.json").read_text())
    assert 0.0 <= m["accuracy"] <= 1.0 and "roc_auc" in m and "confusion_matrix" in m
    assert (rep / "report.md").is_file() and (rep / "roc.png").is_file()


def _kill_after_checkpoint(cmd: list[str], run: Path, checkpoint: str, timeout: float = 120.0) -> None:
    """Start ``cmd``, SIGKILL it as soon as ``checkpoint`` is written, and check it was still working."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while not (run / "checkpoints" / checkpoint).is_file():
            assert proc.poll() is None, f"training ended before {checkpoint}: {proc.stderr.read().decode()[-500:]}"
            assert time.monotonic() - t0 < timeout, "no checkpoint in time"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "checkpoints" / "final.safetensors").exists(), "the job finished before the kill; make it longer"


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path: Path, data: dict[str, Path]) -> None:
    cfg = _config(tmp_path, "dann", data["syn"], data["real"], "").read_text()
    cfg = cfg.replace("optim: {steps: 30, batch_per_domain: 8}", "optim: {steps: 400, batch_per_domain: 8}")
    (tmp_path / "long.yaml").write_text(cfg)
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["train", "--config", str(tmp_path / "long.yaml"), "--quiet", "--device", "cpu"]
    assert main([*args, "--out", str(full)]) == 0
    cmd = [sys.executable, "-m", "simreal", *args, "--out", str(part)]
    _kill_after_checkpoint(cmd, part, "step_00000020.json")
    assert main([*args, "--out", str(part)]) == 0
    assert "resuming from step_000000" in (part / "log.txt").read_text()
    from safetensors.torch import load_file

    a = load_file(str(full / "checkpoints/final.safetensors"))
    b = load_file(str(part / "checkpoints/final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-5), k
    # the metrics of the resumed run are those of the uninterrupted one: nothing logged after the
    # checkpoint the run restarted from survives twice, nothing is missing
    ra = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], "eval" in r) for r in ra] == [(r["step"], "eval" in r) for r in rb]
    for x, y in zip(ra, rb, strict=True):
        for k in ("loss", "lr", "select/source_val"):
            if k in x:
                assert abs(x[k] - y[k]) < 1e-5, (x["step"], k)


def test_bad_inputs_one_line_exit_2(tmp_path: Path, data: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    bad_method = _config(tmp_path, "nosuch", data["syn"], data["real"])
    assert main(["train", "--config", str(bad_method), "--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "method.name" in err[0] and "'dann'" in err[0]  # the allowed values are listed
    bad_task = _config(tmp_path, "dann", data["syn"], data["real"]).read_text().replace("task: classify", "task: x")
    (tmp_path / "t.yaml").write_text(bad_task)
    assert main(["train", "--config", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "r2")]) == 2
    assert "task" in capsys.readouterr().err
    nolab = _config(tmp_path, "source_only", data["real_flat"], data["real"])
    assert main(["train", "--config", str(nolab), "--out", str(tmp_path / "r3")]) == 2
    assert "no categories" in capsys.readouterr().err
    diff = _config(tmp_path, "source_only", data["syn"], data["other"]).read_text().replace("labelled: false", "")
    (tmp_path / "d.yaml").write_text(diff)
    assert main(["train", "--config", str(tmp_path / "d.yaml"), "--out", str(tmp_path / "r4")]) == 2
    assert "differs" in capsys.readouterr().err
    oracle = _config(tmp_path, "dann", data["syn"], data["real"]).read_text().replace("source_val,", "target_val,")
    (tmp_path / "o.yaml").write_text(oracle)
    assert main(["train", "--config", str(tmp_path / "o.yaml"), "--out", str(tmp_path / "r5")]) == 2
    assert "allow_target_labels" in capsys.readouterr().err
    # nothing already written is lost: a different config into an existing run folder is refused
    run = tmp_path / "r6"
    assert main(["train", "--config", str(_config(tmp_path, "mixed", data["syn"], data["real"])), "--out", str(run),
                 "--quiet", "--device", "cpu"]) == 0
    before = (run / "checkpoints/final.safetensors").read_bytes()
    assert main(["train", "--config", str(bad_method.with_name("dann.yaml")), "--out", str(run)]) == 2
    assert "different config" in capsys.readouterr().err
    assert (run / "checkpoints/final.safetensors").read_bytes() == before


def test_adda_from_a_source_only_run_skips_pretraining(tmp_path: Path, data: dict[str, Path],
                                                       capsys: pytest.CaptureFixture) -> None:
    """One source model serves several targets: ``model.weights`` = a source_only run's final model and
    ``method.pretrain: false`` run the adaptation phase only, starting from exactly that model (its first,
    pre-update evaluation scores the source validation set as the source run's final model did)."""
    src_run, run = tmp_path / "src", tmp_path / "adda"
    assert main(["train", "--config", str(_config(tmp_path, "source_only", data["syn"], data["real"])),
                 "--out", str(src_run), "--quiet", "--device", "cpu"]) == 0
    weights = src_run / "checkpoints" / "final.safetensors"
    cfg = _config(tmp_path, "adda", data["syn"], data["real"])
    assert main(["train", "--config", str(cfg), "--out", str(run), "--quiet", "--device", "cpu",
                 "--set", f"model.weights={weights}", "--set", "method.pretrain=false"]) == 0
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in recs) == 10  # adda_steps only, no pre-training phase
    assert {r["phase"] for r in recs} == {"adapt"}
    first = next(r for r in recs if r.get("eval"))
    assert first["step"] == 0
    src_quality = json.loads((src_run / "summary.json").read_text())["source_val_quality"]
    assert first["select/source_val"] == pytest.approx(src_quality)
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "bad"), "--set", "method.pretrain=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "method.pretrain" in err[0] and "model.weights" in err[0]
    assert not (tmp_path / "bad").exists()
