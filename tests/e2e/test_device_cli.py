"""``--device`` on every command that runs a network: an absent or malformed device is one line and exit 2,
before anything is read or written; ``--precision`` and ``--variant`` likewise; and a whole train/eval cycle
at bfloat16 mixed precision on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from simreal.cli.main import main

from .test_train_cli import _config, _folder

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _commands(tmp: Path) -> dict[str, list[str]]:
    cfg = tmp / "train.yaml"
    cfg.write_text(f"data: {{domains: [{{path: {tmp / 'missing'}}}]}}\n")
    missing = str(tmp / "missing")
    return {
        "train": ["train", "--config", str(cfg), "--out", str(tmp / "run")],
        "eval": ["eval", "--run", missing, "--data", missing],
        "refine train": ["refine", "train", "--source", missing, "--target", missing, "--out", str(tmp / "ref")],
        "refine apply": ["refine", "apply", "--run", missing, "--source", missing, "--out", str(tmp / "out")],
        "refine eval": ["refine", "eval", "--run", missing],
        "metrics fid": ["metrics", "fid", missing, missing],
        "metrics kid": ["metrics", "kid", missing, missing],
        "metrics pca": ["metrics", "pca", missing, missing, "-o", str(tmp / "p.png")],
        "bench digits": ["bench", "digits", "--out", str(tmp / "out")],
        "demo": ["demo", "--out", str(tmp / "out")],
    }


COMMANDS = ["train", "eval", "refine train", "refine apply", "refine eval", "metrics fid", "metrics kid", "metrics pca",
            "bench digits", "demo"]


@NO_CUDA
@pytest.mark.parametrize("command", COMMANDS)
def test_absent_gpu_is_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    args = _commands(tmp_path)[command]
    assert main([*args, "--device", "cuda:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda:1 was asked for but this machine has no CUDA device" in err[0], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "ref").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "eval", "metrics fid", "refine apply"])
def test_malformed_device_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    assert main([*_commands(tmp_path)[command], "--device", "gpu0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'gpu0' is not a device" in err[0], err


def test_bad_precision_and_variant_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([*_commands(tmp_path)["train"], "--precision", "fp8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precision" in err[0] and "16-mixed" in err[0], err
    assert main(["render", "--out", str(tmp_path / "r"), "--variant", "scalar_spectral"]) == 2
    assert "scalar_spectral" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["render", "--out", str(tmp_path / "r"), "--variant", "cuda_ad_rgb", "-n", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cuda_ad_rgb needs a CUDA GPU" in err[0], err
        assert not (tmp_path / "r").exists()


def test_train_and_eval_in_bf16_mixed_precision_on_the_cpu(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The whole mixed-precision path (autocast in the steps, float32 losses, checkpoints) runs end to end;
    the run records the precision it ran at and resumes at another (a volatile key)."""
    syn = _folder(tmp_path / "syn", ["a", "b"], 6, 0.0, 1)
    real = _folder(tmp_path / "real", ["a", "b"], 5, 0.2, 2)
    cfg = _config(tmp_path, "dann", syn, real).read_text().replace("steps: 30", "steps: 20")
    (tmp_path / "c.yaml").write_text(cfg)
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(run), "-q", "--device", "cpu",
                 "--precision", "bf16-mixed"]) == 0
    assert "precision: bf16-mixed" in (run / "config.yaml").read_text()
    assert "precision=bf16-mixed" in (run / "log.txt").read_text()
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert recs and all(0 < r["loss"] < 10 for r in recs)
    # rerunning at float32 is the same run (precision is volatile): it resumes, finds it finished
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(run), "-q", "--device", "cpu"]) == 0
    assert "precision: '32'" in (run / "config.yaml").read_text()
    assert main(["eval", "--run", str(run), "--data", str(real), "--device", "cpu"]) == 0
    assert "accuracy=" in capsys.readouterr().out
