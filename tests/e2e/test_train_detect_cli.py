"""End to end: ``simreal train`` (task detect, DANN) then ``simreal eval`` writes the detection report;
a dataset without boxes is one error line and exit 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simreal.cli.main import main
from simreal.datasets.contract import DatasetWriter


def _squares(root: Path, n: int, seed: int, shift: float = 0.0, boxes: bool = True) -> Path:
    """Noise images (40 px) with 0-1 red squares and their COCO boxes; one box in five is ``ignore``d."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, root.name, "synthetic", [{"id": 1, "name": "red"}])
    images, anns = [], []
    for i in range(n):
        img = np.clip(rng.normal(0.4 + shift, 0.1, (40, 40, 3)), 0, 1)
        if i % 4:
            s = int(rng.integers(8, 15))
            x, y = (int(v) for v in rng.integers(0, 40 - s, 2))
            img[y:y + s, x:x + s] = (0.9, 0.1, 0.1)
            anns.append({"image_id": i + 1, "category_id": 1, "bbox": [x, y, s, s], "area": float(s * s),
                         "iscrowd": 0, **({"ignore": True} if i % 5 == 0 else {})})
        buf = io.BytesIO()
        Image.fromarray((img * 255).astype(np.uint8)).save(buf, format="PNG")
        images.append({"id": i + 1, "file_name": w.write_file(f"images/{i:03d}.png", buf.getvalue()), "width": 40,
                       "height": 40})
    w.finalize(images, anns if boxes else [])
    return root


def _config(tmp: Path, syn: Path, real: Path) -> Path:
    cfg = tmp / "det.yaml"
    cfg.write_text(f"""task: detect
seed: 0
data:
  image_size: [32, 32]
  domains:
    - {{path: {syn}, name: synthetic, role: source}}
    - {{path: {real}, name: real, role: target, labelled: false}}
model: {{arch: squeezedet_tiny, width: 8}}
method: {{name: dann, alpha: 0.1, schedule: dann, disc_hidden: [16]}}
optim: {{steps: 40, batch_per_domain: 8, lr: 0.003}}
selection: {{policy: source_val, eval_every: 20}}
checkpoint_every: 20
detect: {{num_anchors: 2, score_threshold: 0.2}}
""")
    return cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("det")
    return {"syn": _squares(t / "syn", 40, 1), "real": _squares(t / "real", 16, 2, shift=0.2),
            "nobox": _squares(t / "nobox", 4, 3, boxes=False)}


def test_detect_train_then_eval_cli(tmp_path: Path, data: dict[str, Path]) -> None:
    torch.set_num_threads(1)
    run = tmp_path / "run"
    assert main(["train", "--config", str(_config(tmp_path, data["syn"], data["real"])), "--out", str(run),
                 "--quiet", "--device", "cpu"]) == 0
    for f in ("report.md", "loss.png", "disc_acc.png", "checkpoints/final.safetensors", "summary.json"):
        assert (run / f).is_file(), f
    meta = json.loads((run / "checkpoints/final.json").read_text())
    assert meta["task"] == "detect" and len(meta["task_state"]["fitted_anchors"]) == 2
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("disc_acc/0" in r and "disc_acc/1" in r for r in recs)
    assert main(["eval", "--run", str(run), "--data", str(data["real"]), "--device", "cpu"]) == 0
    rep = run / "eval" / "real"
    m = json.loads((rep / "metrics.json").read_text())
    for k in ("precision", "recall", "f1", "mAP", "AP50", "image_roc_auc", "image_ap"):
        assert k in m and (m[k] is None or 0.0 <= m[k] <= 1.0), k
    assert m["ignored_boxes"] > 0 and m["image_negatives"] > 0 and m["image_roc_auc"] is not None
    text = (rep / "report.md").read_text()
    assert "| mAP |" in text and "| f1 |" in text and "| red |" in text and "no target labels used" in text
    assert (rep / "roc.png").is_file() and (rep / "detections.json").is_file()


def test_detect_without_boxes_exit_2_one_line(tmp_path: Path, data: dict[str, Path],
                                              capsys: pytest.CaptureFixture) -> None:
    cfg = _config(tmp_path, data["nobox"], data["real"])
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no bounding boxes" in err[0] and "nobox" in err[0]
