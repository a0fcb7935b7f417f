"""Scoring frames with runs and classifier files: the model input is bit-identical to what training
builds from the same image file (``torchdata.FolderSource``), and scores/boxes equal the task's own
prediction — or, for classifier files and segmenters, a computation written out here."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simreal.adapt.api import load_run
from simreal.datasets.contract import Dataset
from simreal.datasets.torchdata import FolderSource
from simreal.errors import ConfigError, RunError, WeightsError
from simreal.triage.config import ModelSpec
from simreal.triage.frames import jpeg_roundtrip
from simreal.triage.scoring import Scorer, describe_model, prepare

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from triage_helpers import object_at, saved_run, scene  # noqa: E402


def _hash(p: Path) -> str:
    return "h"


@pytest.fixture(scope="module")
def frame_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("frame")
    _, img = jpeg_roundtrip(Image.fromarray(scene(3, 1.0, object_at(1.0, 3))), 90)
    img.save(d / "f.png")  # lossless copy of the JPEG-decoded frame, as a one-image "dataset"
    return d / "f.png"


@pytest.mark.parametrize("channels", [3, 1])
def test_classify_input_is_the_training_input(tmp_path: Path, frame_file: Path, channels: int) -> None:
    run = saved_run(tmp_path / "run", "classify", "smallcnn", (20, 28), ["background", "canister"], channels)
    info = describe_model(ModelSpec(run=str(run)), _hash)
    assert info.spec.size == (20, 28) and info.spec.channels == channels and info.labels == ["background", "canister"]
    src = FolderSource("real", 0, Dataset.open(frame_file.parent), (20, 28), channels, None)
    x_train = src.get([0])[0]
    sc = Scorer(info, "cpu")
    arr = prepare(Image.open(frame_file), info.spec)
    assert torch.equal(sc.batch([arr]), x_train)
    _, task, model, _ = load_run(run)
    want = task.predict(model, x_train)["prob"][0]
    got = sc.score([arr])[0]
    assert got["boxes"] == [] and got["scores"] == pytest.approx(want.tolist(), abs=1e-6)
    assert sum(got["scores"]) == pytest.approx(1.0, abs=1e-5)


def test_keep_selects_labels(tmp_path: Path, frame_file: Path) -> None:
    run = saved_run(tmp_path / "run", "classify", "smallcnn", (16, 16), ["background", "a", "b"])
    full = Scorer(describe_model(ModelSpec(run=str(run)), _hash), "cpu")
    info = describe_model(ModelSpec(run=str(run), keep=["b"]), _hash)
    assert info.kept_labels == ["b"]
    arr = prepare(Image.open(frame_file), info.spec)
    assert Scorer(info, "cpu").score([arr])[0]["scores"] == pytest.approx([full.score([arr])[0]["scores"][2]])
    with pytest.raises(ConfigError, match="keep: label 'c' is not among its labels"):
        describe_model(ModelSpec(run=str(run), keep=["c"]), _hash)


def test_detector_boxes_and_per_label_max(tmp_path: Path, frame_file: Path) -> None:
    run = saved_run(tmp_path / "det", "detect", "squeezedet_tiny", (32, 48), ["red", "blue"],
                    extra="detect: {num_anchors: 2, keep_threshold: 0.0}",
                    task_state={"fitted_anchors": [[8.0, 8.0], [14.0, 10.0]]})
    info = describe_model(ModelSpec(run=str(run), box_threshold=0.0, max_boxes=5), _hash)
    sc = Scorer(info, "cpu")
    arr = prepare(Image.open(frame_file), info.spec)
    got = sc.score([arr, arr[::-1].copy()])
    _, task, model, _ = load_run(run)
    dets = task.predict(model, sc.batch([arr, arr[::-1].copy()]))["dets"]
    for g, d in zip(got, dets, strict=True):
        order = np.argsort(-d["scores"], kind="stable")[:5]
        assert len(g["boxes"]) == len(order) > 0
        for b, j in zip(g["boxes"], order, strict=True):
            assert b[:4] == pytest.approx(d["boxes"][j].tolist(), abs=1e-4)
            assert b[4] == pytest.approx(float(d["scores"][j])) and b[5] == int(d["labels"][j])
        for c in range(2):
            m = d["scores"][d["labels"] == c]
            assert g["scores"][c] == pytest.approx(float(m.max()) if m.size else 0.0, abs=1e-6)
        assert max(g["scores"]) == pytest.approx(d["image_score"], abs=1e-6)


def test_segment_score_is_mean_of_top_5_percent_pixels(tmp_path: Path, frame_file: Path) -> None:
    run = saved_run(tmp_path / "seg", "segment", "unet_small", (24, 40), ["red"])
    info = describe_model(ModelSpec(run=str(run)), _hash)
    sc = Scorer(info, "cpu")
    arr = prepare(Image.open(frame_file), info.spec)
    got = sc.score([arr])[0]["scores"]
    _, _, model, _ = load_run(run)
    with torch.no_grad():
        prob = torch.softmax(model(sc.batch([arr]))[0], 1)[0, 1].flatten().numpy()
    k = math.ceil(0.05 * prob.size)
    assert got == pytest.approx([float(np.sort(prob)[::-1][:k].mean())], abs=1e-6)


def test_torchvision_classifier_file_by_hand(tmp_path: Path, frame_file: Path) -> None:
    from simreal.nn.resnet import resnet18

    torch.manual_seed(0)
    net = resnet18(3, 3).eval()
    w = tmp_path / "clf.pth"
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, w)  # a DataParallel-saved file
    spec = ModelSpec(weights=str(w), arch="resnet18", labels=["cat", "dog", "tank"], image_size=32, resize=40)
    info = describe_model(spec, _hash)
    img = Image.open(frame_file).convert("RGB")  # 128 x 72
    s = 40 / 72
    r = img.resize((round(128 * s), 40), Image.Resampling.BILINEAR)
    left = int(round((r.width - 32) / 2.0))
    x = np.asarray(r.crop((left, 4, left + 32, 36)), np.float32) / 255.0
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    with torch.no_grad():
        want = torch.softmax(net(torch.from_numpy(x).permute(2, 0, 1)[None].float()), 1)[0].numpy()
    got = Scorer(info, "cpu").score([prepare(img, info.spec)])[0]["scores"]
    assert got == pytest.approx(want.tolist(), abs=1e-5)
    bad = describe_model(spec.model_copy(update={"labels": ["cat", "dog"]}), _hash)
    with pytest.raises(WeightsError, match="has 3 outputs but 2 labels"):
        Scorer(bad, "cpu")


def test_describe_model_errors_name_the_run(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="model 'nowhere': .*nowhere: run folder not found"):
        describe_model(ModelSpec(run=str(tmp_path / "nowhere")), _hash)
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunError, match="model 'plain': .*plain: not a simreal run folder"):
        describe_model(ModelSpec(run=str(tmp_path / "plain")), _hash)
    run = saved_run(tmp_path / "r", "classify", "smallcnn", (16, 16), ["a", "b"])
    meta = run / "checkpoints" / "final.json"
    doc = json.loads(meta.read_text())
    meta.write_text(json.dumps({**doc, "task": "reid"}))
    with pytest.raises(RunError, match="run is of task 'reid'; triage scores classify, detect, segment runs"):
        describe_model(ModelSpec(run=str(run)), _hash)
    (run / "checkpoints" / "final.safetensors").unlink()
    with pytest.raises(RunError, match="run has no final model"):
        describe_model(ModelSpec(run=str(run)), _hash)
    with pytest.raises(ConfigError, match="weights file not found"):
        describe_model(ModelSpec(weights=str(tmp_path / "x.pth"), labels=["a"]), _hash)
