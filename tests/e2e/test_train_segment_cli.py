"""End to end: simreal train / eval for segmentation on tiny shape datasets (DANN, fine-tuning, bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.unit.test_segment import make_shapes

from simreal.cli.main import main


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("segdata")
    return {"syn": make_shapes(t / "syn", 24, 1), "real": make_shapes(t / "real", 12, 2, shift=0.15),
            "nomask": make_shapes(t / "nomask", 4, 3, masks=False)}


def _config(tmp: Path, syn: Path, real: Path, method: str = "dann", real_labelled: bool = False) -> Path:
    cfg = tmp / f"seg_{method}.yaml"
    cfg.write_text(f"""task: segment
seed: 0
data:
  image_size: [32, 32]
  domains:
    - {{path: {syn}, name: synthetic, role: source}}
    - {{path: {real}, name: real, role: target, labelled: {str(real_labelled).lower()}}}
model: {{arch: unet_small, width: 8}}
method: {{name: {method}, alpha: 0.1, schedule: constant, disc_hidden: [16], finetune_steps: 10}}
optim: {{steps: 40, batch_per_domain: 8, lr: 0.003, lr_schedule: constant}}
selection: {{policy: iwv, eval_every: 20}}
segment: {{class_weights: [0.5, 1.0, 1.0]}}
checkpoint_every: 20
""")
    return cfg


def test_train_dann_then_eval(tmp_path: Path, data: dict[str, Path]) -> None:
    run = tmp_path / "run"
    assert main(["train", "--config", str(_config(tmp_path, data["syn"], data["real"])), "--out", str(run),
                 "--quiet", "--device", "cpu"]) == 0
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("disc_acc/0" in r and "disc_acc/1" in r for r in recs)
    assert any("select/iwv" in r and "source_val" in r for r in recs)
    assert "iwv" in (run / "report.md").read_text()
    assert main(["eval", "--run", str(run), "--data", str(data["real"]), "--device", "cpu"]) == 0
    rep = run / "eval" / "real"
    m = json.loads((rep / "metrics.json").read_text())
    assert 0.0 <= m["miou"] <= 1.0 and 0.0 <= m["pixel_accuracy"] <= 1.0
    assert set(m["per_class_iou"]) == {"background", "square", "disc"}
    text = (rep / "report.md").read_text()
    assert "| miou |" in text and "| square |" in text and "image_roc_auc_macro" in text
    assert (rep / "roc.png").is_file() and (rep / "pr.png").is_file()


def test_finetune_resets_decoder_head(tmp_path: Path, data: dict[str, Path]) -> None:
    cfg = _config(tmp_path, data["syn"], data["real"], method="finetune", real_labelled=True)
    run = tmp_path / "ft"
    assert main(["train", "--config", str(cfg), "--out", str(run), "--quiet", "--set", "optim.steps=10",
                 "--set", "selection.policy=last", "--device", "cpu"]) == 0
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["phase"] == "finetune" and recs[-1]["step"] == 20
    meta = json.loads((run / "checkpoints" / "final.json").read_text())
    assert meta["task"] == "segment" and meta["classes"] == ["square", "disc"]


def test_no_masks_is_one_line_exit_2(tmp_path: Path, data: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    cfg = _config(tmp_path, data["nomask"], data["real"])
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nomask" in err[0] and "no instance masks" in err[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(_config(tmp_path, data["syn"], data["real"]).read_text().replace("unet_small", "unet_vgg"))
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "unet_vgg" in capsys.readouterr().err


def test_adda_adapts_the_encoder(tmp_path: Path, data: dict[str, Path]) -> None:
    cfg = _config(tmp_path, data["syn"], data["real"], method="adda")
    run = tmp_path / "adda"
    assert main(["train", "--config", str(cfg), "--out", str(run), "--quiet", "--set", "optim.steps=10",
                 "--set", "method.adda_steps=10", "--set", "selection.policy=source_val", "--device", "cpu"]) == 0
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["phase"] == "adapt" and "disc_acc/1" in r for r in recs)
    assert main(["eval", "--run", str(run), "--data", str(data["real"]), "--device", "cpu"]) == 0
