"""``simreal anonymize digits/train/apply/audit/sweep`` end to end on tiny data, resume after SIGKILL,
bad inputs (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from simreal.cli.main import main
from simreal.datasets import Dataset
from simreal.datasets.coco import image_file

from .test_train_cli import _kill_after_checkpoint

TINY_YAML = """
model: {width: 4, code_channels: 4, discriminator_width: 4, private_width: 4}
loss: {lam: 1.0}
train: {pretrain_steps: 10, disc_pretrain_steps: 5, steps: 10, batch_size: 16, checkpoint_every: 10,
        log_every: 5, sample_every: 10, num_samples: 4, threads: 1}
"""
AUDIT_YAML = "attackers: [logistic, mlp]\nmax_epochs: 4\npatience: 2\nhidden: 16\nthreads: 1\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("anoncli")
    ds = root / "digits"
    assert main(["anonymize", "digits", "--out", str(ds), "--per-cell", "2", "--families", "3", "--size", "12",
                 "--test-fraction", "0.5", "-q"]) == 0
    (root / "anon.yaml").write_text(TINY_YAML)
    (root / "audit.yaml").write_text(AUDIT_YAML)
    return {"root": root, "ds": ds, "cfg": root / "anon.yaml", "audit": root / "audit.yaml"}


def test_cli_end_to_end(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds, run, anon = data["ds"], tmp_path / "run", tmp_path / "anon"
    orig = Dataset.open(ds)
    assert len(orig) == 60 and {r["font"] for r in orig.images} == {"DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"}
    info = json.loads((ds / "dataset.json").read_text())
    assert [f["name"] for f in info["provenance"]["font_families"]] == ["DejaVu Sans", "DejaVu Serif",
                                                                        "DejaVu Sans Mono"]
    assert main(["anonymize", "train", "--data", str(ds), "--private-label", "font", "--config", str(data["cfg"]),
                 "--out", str(run), "--device", "cpu", "-q"]) == 0
    assert "25 steps" in capsys.readouterr().out
    assert (run / "checkpoints" / "final.safetensors").is_file() and (run / "log.txt").is_file()
    assert main(["anonymize", "apply", "--run", str(run), "--data", str(ds), "--out", str(anon), "-q"]) == 0
    out = Dataset.open(anon)
    assert out.domain == "anonymized" and len(out) == len(orig)
    assert [r["id"] for r in out.images] == [r["id"] for r in orig.images]
    assert all("font" not in r and "digit" in r and r["domain"] == "anonymized" for r in out.images)
    assert all(r["file_name"] == f"{i:06d}.png" and "anonymized_from" not in r
               for i, r in enumerate(out.images))
    prov = json.loads((anon / "dataset.json").read_text())["provenance"]
    assert prov["anonymize_run"] == str(run) and prov["parents"][0]["path"] == str(ds)
    assert prov["private_label"] == "font" and prov["private_field_kept"] is False and "command" in prov
    assert out.load_image(0, "L").shape == (12, 12)
    capsys.readouterr()
    assert main(["anonymize", "audit", "--original", str(ds), "--anonymized", str(anon), "--private-label", "font",
                 "--utility-label", "digit", "--config", str(data["audit"]), "--set", "seeds=[0,1]", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "private 'font'" in printed and "utility 'digit'" in printed and "PSNR" in printed
    res = json.loads((anon / "audit" / "audit.json").read_text())
    assert set(res["private"]["original"]) == {"logistic", "mlp"}
    assert len(res["private"]["anonymized"]["mlp"]["seeds"]) == 2
    assert res["split"] == {"train": 30, "test": 30, "source": "record field 'split' ('test' held out)"}
    assert (anon / "audit" / "report.md").read_text().count("| mlp |") == 2 and (anon / "audit" / "audit.png").is_file()
    # the sweep: one run per lambda, a table and the plot
    sweep = tmp_path / "sweep"
    assert main(["anonymize", "sweep", "--data", str(ds), "--private-label", "font", "--utility-label", "digit",
                 "--lambdas", "0,2", "--config", str(data["cfg"]), "--audit-config", str(data["audit"]),
                 "--out", str(sweep), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "lambda 0:" in printed and "lambda 2:" in printed and "best lambda" in printed
    table = json.loads((sweep / "sweep.json").read_text())
    assert [r["lambda"] for r in table["rows"]] == [0.0, 2.0]
    assert (sweep / "sweep.png").is_file() and "| 2 |" in (sweep / "sweep.md").read_text()
    assert (sweep / "lambda_2" / "run" / "run.json").is_file() and (sweep / "lambda_2" / "report.md").is_file()
    # rerunning the sweep reuses every finished part
    before = (sweep / "lambda_2" / "audit.json").stat().st_mtime_ns
    assert main(["anonymize", "sweep", "--data", str(ds), "--private-label", "font", "--utility-label", "digit",
                 "--lambdas", "0,2", "--config", str(data["cfg"]), "--audit-config", str(data["audit"]),
                 "--out", str(sweep), "-q"]) == 0
    assert (sweep / "lambda_2" / "audit.json").stat().st_mtime_ns == before


def test_resume_after_sigkill_matches_an_uninterrupted_run(data: dict[str, Path], tmp_path: Path) -> None:
    long_cfg = tmp_path / "long.yaml"
    long_cfg.write_text(TINY_YAML.replace("steps: 10, batch_size", "steps: 100, batch_size"))
    args = ["anonymize", "train", "--data", str(data["ds"]), "--private-label", "font", "--config", str(long_cfg)]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main([*args, "--out", str(full), "-q"]) == 0
    _kill_after_checkpoint([sys.executable, "-m", "simreal", *args, "--out", str(part), "-q"], part,
                           "step_00000030.json", timeout=180)
    assert main([*args, "--out", str(part), "-q"]) == 0
    assert "resumed from step_000000" in (part / "log.txt").read_text()
    from safetensors.torch import load_file

    a = load_file(str(full / "checkpoints" / "final.safetensors"))
    b = load_file(str(part / "checkpoints" / "final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-5), k
    ra = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        assert abs(x["rec"] - y["rec"]) < 1e-5, x["step"]


def _one_line_error(capsys: pytest.CaptureFixture, *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("simreal: error:"), err
    for n in needles:
        assert n in err[0], (n, err[0])


def _write_variant(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    import shutil

    shutil.copytree(src, dst)
    doc = json.loads((dst / "annotations.json").read_text())
    edit(doc)
    (dst / "annotations.json").write_text(json.dumps(doc))
    return dst


def test_bad_inputs_one_line_exit_2(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds, cfg = data["ds"], str(data["cfg"])
    train = ["anonymize", "train", "--config", cfg, "-q"]
    # a missing private-label field
    assert main([*train, "--data", str(ds), "--private-label", "writer", "--out", str(tmp_path / "r1")]) == 2
    _one_line_error(capsys, "images[0]", "'writer'", "--private-label")
    assert main([*train, "--data", str(ds), "--out", str(tmp_path / "r1")]) == 2  # no private label at all
    _one_line_error(capsys, "data.private_label", "--private-label")
    # a single private class
    one = _write_variant(ds, tmp_path / "one", lambda d: [r.update(font="X") for r in d["images"]])
    assert main([*train, "--data", str(one), "--private-label", "font", "--out", str(tmp_path / "r2")]) == 2
    _one_line_error(capsys, "single value 'X'")
    # images of mixed sizes
    mixed = _write_variant(ds, tmp_path / "mixed", lambda d: None)
    from PIL import Image

    rec = Dataset.open(mixed).images[5]
    name = rec["file_name"]
    Image.new("L", (14, 12)).save(image_file(mixed, rec))
    assert main([*train, "--data", str(mixed), "--private-label", "font", "--out", str(tmp_path / "r3")]) == 2
    _one_line_error(capsys, name, "14x12", "expected 12x12")
    # lambda < 0
    assert main([*train, "--data", str(ds), "--private-label", "font", "--set", "loss.lam=-1",
                 "--out", str(tmp_path / "r4")]) == 2
    _one_line_error(capsys, "loss.lam", "greater than or equal to 0")
    assert main(["anonymize", "sweep", "--data", str(ds), "--private-label", "font", "--lambdas", "1,-2",
                 "--out", str(tmp_path / "s")]) == 2
    _one_line_error(capsys, "--lambdas", "-2")
    assert main([*train, "--data", str(ds), "--private-label", "font", "--device", "cuda:7",
                 "--out", str(tmp_path / "r5")]) == 2
    _one_line_error(capsys, "cuda:7")
    for k in range(1, 6):
        assert not (tmp_path / f"r{k}").exists(), k  # nothing written for bad input
    assert not (tmp_path / "s").exists()
    # a run folder of another kind: refused by train (nothing in it touched) and by apply
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"kind": "refine"}))
    (other / "config.yaml").write_text("model: cyclegan\n")
    before = sorted(p.name for p in other.iterdir())
    assert main([*train, "--data", str(ds), "--private-label", "font", "--out", str(other)]) == 2
    _one_line_error(capsys, "kind 'refine'", "'anonymize'")
    assert main(["anonymize", "apply", "--run", str(other), "--data", str(ds), "--out", str(tmp_path / "a")]) == 2
    _one_line_error(capsys, "kind 'refine'")
    assert sorted(p.name for p in other.iterdir()) == before and not (tmp_path / "a").exists()
    # audit: an anonymized set that does not cover the original's records
    partial = _write_variant(ds, tmp_path / "partial", lambda d: d.update(images=d["images"][:-1]))
    assert main(["anonymize", "audit", "--original", str(ds), "--anonymized", str(partial), "--private-label",
                 "font", "--out", str(tmp_path / "au"), "-q"]) == 2
    _one_line_error(capsys, "no anonymized counterpart")
    assert not (tmp_path / "au").exists()
