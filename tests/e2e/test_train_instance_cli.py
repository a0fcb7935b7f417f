"""End to end: task ``instance`` through ``simreal train`` / ``simreal eval``.

* A tiny Mask R-CNN overfits a handful of rendered images (mask AP50 > 0.9 on them, pycocotools).
* Multi-level DANN (backbone stage, FPN levels, RoI level, consistency) over two domains, killed with
  SIGKILL after a checkpoint and resumed: the result equals an uninterrupted run.
* Bad input: no instance masks, anchors that fit no box, an unknown feature level -> one line, exit 2,
  no run folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from simreal.cli.main import main

from .instance_helpers import SMALL_INSTANCE, shapes_dataset
from .test_train_cli import _kill_after_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("inst")
    return {"few": shapes_dataset(t / "few", 4, 0, negatives=1), "syn": shapes_dataset(t / "syn", 10, 1),
            "real": shapes_dataset(t / "real", 6, 2, shift=0.3), "nomask": shapes_dataset(t / "nomask", 3, 3,
                                                                                          masks=False)}


def _config(tmp: Path, domains: str, method: str, optim: str, extra: str = "", name: str = "cfg.yaml") -> Path:
    p = tmp / name
    p.write_text(f"""task: instance
seed: 0
data:
  image_size: [64, 64]
  source_val_fraction: 0
  domains:
{domains}
model: {{arch: maskrcnn_resnet18_fpn, base_width: 16}}
method: {method}
optim: {optim}
selection: {{policy: last}}
checkpoint_every: 4
{SMALL_INSTANCE}{extra}""")
    return p


@pytest.mark.slow
def test_tiny_maskrcnn_overfits_rendered_images(tmp_path: Path, data: dict[str, Path]) -> None:
    torch.set_num_threads(1)
    cfg = _config(tmp_path, f"    - {{path: {data['few']}, name: shapes}}", "{name: source_only}",
                  "{steps: 80, batch_per_domain: 5, lr: 0.004, weight_decay: 0, lr_schedule: cosine}",
                  extra="  samples: 4\n")
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(run), "-q"]) == 0
    assert main(["eval", "--run", str(run), "--data", str(data["few"])]) == 0
    rep = run / "eval" / "few"
    m = json.loads((rep / "metrics.json").read_text())
    print("mask AP50", m["AP50"], "box AP50", m["bbox_AP50"], "mask AP", m["mAP"])
    assert m["AP50"] > 0.9 and m["bbox_AP50"] > 0.9, (m["AP50"], m["bbox_AP50"])  # segm (mask) AP50 and box AP50
    assert m["image_negatives"] == 1 and m["image_roc_auc"] is not None and m["image_roc_auc"] > 0.9
    assert set(m["per_class"]) == {"disc", "square"} and m["per_class"]["square"]["segm_AP50"] is not None
    text = (rep / "report.md").read_text()
    assert "| mAP |" in text and "| bbox_mAP |" in text and "| disc |" in text and "![samples](samples.png)" in text
    for f in ("roc.png", "pr_image.png", "pr.png", "samples.png", "detections.json"):
        assert (rep / f).is_file(), f
    dets = json.loads((rep / "detections.json").read_text())
    assert dets and {"bbox", "score", "category", "segmentation"} <= set(dets[0])


def test_multilevel_dann_resumes_after_sigkill(tmp_path: Path, data: dict[str, Path]) -> None:
    domains = (f"    - {{path: {data['syn']}, name: synthetic, role: source}}\n"
               f"    - {{path: {data['real']}, name: real, role: target, labelled: false}}")
    method = ("{name: dann, alpha: 0.1, schedule: dann, levels: [{name: layer4, discriminator: mlp}, {name: p2}, "
              "{name: p3, weight: 0.5, alpha: 0.2}, {name: roi, hidden: [32]}], "
              "consistency: {image: p3, instance: roi, weight: 0.1}}")
    cfg = _config(tmp_path, domains, method, "{steps: 12, batch_per_domain: 2, lr: 0.002}")
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", "--config", str(cfg), "--out", str(full), "-q"]) == 0
    recs = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in recs if "loss" in r][-1]
    for k in ("domain_loss/layer4", "domain_loss/p2", "domain_loss/roi", "disc_acc/roi/1", "alpha/p3",
              "consistency_loss"):
        assert k in last, k
    assert abs(last["alpha/p3"] / last["alpha/p2"] - 2.0) < 1e-6  # each level its own coefficient
    cmd = [sys.executable, "-m", "simreal", "train", "--config", str(cfg), "--out", str(part), "-q"]
    _kill_after_checkpoint(cmd, part, "step_00000004.json")
    assert main(["train", "--config", str(cfg), "--out", str(part), "-q"]) == 0
    assert "resuming from step_00000004" in (part / "log.txt").read_text()
    from safetensors.torch import load_file

    a = load_file(str(full / "checkpoints/final.safetensors"))
    b = load_file(str(part / "checkpoints/final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-5), k


def test_instance_bad_inputs_one_line_exit_2(tmp_path: Path, data: dict[str, Path],
                                             capsys: pytest.CaptureFixture) -> None:
    one = f"    - {{path: {data['syn']}, name: synthetic}}"
    cases = [
        (_config(tmp_path, f"    - {{path: {data['nomask']}}}", "{name: source_only}", "{steps: 2}", name="a.yaml"),
         ["no instance masks", "nomask"]),
        (_config(tmp_path, one, "{name: source_only}", "{steps: 2}", name="b.yaml").read_text().replace(
            "anchor_sizes: [[8], [16], [32], [64], [128]]", "anchor_sizes: [[256], [512], [512], [512], [512]]"),
         ["instance.anchor_sizes", "overlap no anchor"]),
        (_config(tmp_path, one + f"\n    - {{path: {data['real']}, role: target, labelled: false}}",
                 "{name: dann, levels: [{name: layer4}, {name: p9}]}", "{steps: 2}", name="c.yaml"),
         ["method.levels[1].name", "'p9'", "p2"]),
    ]
    for i, (cfg, needles) in enumerate(cases):
        if isinstance(cfg, str):
            path = tmp_path / f"text{i}.yaml"
            path.write_text(cfg)
            cfg = path
        out = tmp_path / f"run{i}"
        assert main(["train", "--config", str(cfg), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(n in err[0] for n in needles), err
        assert not out.exists()  # nothing written


@pytest.mark.parametrize("method,target,policy", [
    ("{name: mixed}", "labelled: true", "source_val"),
    ("{name: adda, adda_steps: 3}", "labelled: false", "iwv"),
    ("{name: finetune, finetune_steps: 2}", "labelled: true", "source_val"),
])
def test_every_adaptation_method_trains_selects_and_evaluates(tmp_path: Path, data: dict[str, Path], method: str,
                                                              target: str, policy: str) -> None:
    """The instance task under the methods other than source_only / DANN, with a label-free selection policy:
    a method that cannot handle Mask R-CNN's list-of-dict targets, its training-mode loss dict or its
    feature hooks fails here."""
    torch.set_num_threads(1)
    domains = (f"    - {{path: {data['syn']}, name: synthetic, role: source}}\n"
               f"    - {{path: {data['real']}, name: real, role: target, {target}}}")
    cfg = _config(tmp_path, domains, method, "{steps: 3, batch_per_domain: 2, lr: 0.002}")
    text = cfg.read_text().replace("source_val_fraction: 0", "source_val_fraction: 0.3").replace(
        "selection: {policy: last}", f"selection: {{policy: {policy}, eval_every: 2}}")
    cfg.write_text(text)
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(run), "-q"]) == 0
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in recs)
    assert any(r.get("eval") and f"select/{policy}" in r for r in recs), recs[-3:]  # selected without target labels
    assert (run / "checkpoints/final.safetensors").is_file()
    assert main(["eval", "--run", str(run), "--data", str(data["real"])]) == 0
    m = json.loads((run / "eval" / "real" / "metrics.json").read_text())
    assert {"mAP", "AP50", "bbox_mAP", "image_roc_auc"} <= set(m)
