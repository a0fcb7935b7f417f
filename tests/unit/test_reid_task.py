"""Re-id task: identity/camera conventions, query/gallery rules, loss, and a tiny model that learns identities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simreal.datasets import Dataset, DatasetWriter, encode_image
from simreal.errors import DatasetError
from simreal.tasks.reid import ReidTask, camera_of, embedding_distance, identity_of, query_gallery

H, W = 32, 16


def person(rng: np.random.Generator, palette: np.ndarray, cam: int) -> np.ndarray:
    """An identity's 4 coloured horizontal bands, jittered; camera 1 is darker with a hue shift."""
    img = np.zeros((H, W, 3))
    edges = np.array([0, 8, 16, 24, 32]) + np.r_[0, rng.integers(-2, 3, 3), 0]
    for b in range(4):
        img[edges[b]:edges[b + 1]] = palette[b]
    img += rng.normal(0, 0.06, img.shape)
    if cam == 1:
        img = 0.75 * (0.8 * img + 0.2 * np.roll(img, 1, axis=2)) + 0.05
    return np.clip(img, 0, 1)


def palettes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, 4, 3))


def make_identities(root: Path, pal: np.ndarray, per_cam: int, seed: int, splits: bool = False,
                    identity_field: bool = True) -> Path:
    """A dataset of ``len(pal)`` identities x 2 cameras x ``per_cam`` images; optional query (camera 0,
    first image) / gallery (the rest) splits."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, root.name, "synthetic", [{"id": 1, "name": "person"}])
    images = []
    for pid in range(len(pal)):
        for cam in (0, 1):
            for j in range(per_cam):
                png = encode_image((person(rng, pal[pid], cam) * 255).astype(np.uint8))
                rec = {"id": len(images) + 1, "file_name": w.write_file(f"images/{pid:03d}_c{cam}_{j}.png", png),
                       "width": W, "height": H}
                if identity_field:
                    rec.update(identity=pid + 100, camera=cam)
                if splits:
                    rec["split"] = "query" if (cam == 0 and j == 0) else "gallery"
                images.append(rec)
    w.finalize(images, [])
    return root


def make_identity_folder(root: Path, pal: np.ndarray, per_cam: int, seed: int) -> Path:
    """Plain folder: one sub-folder per identity, Market-style names ``<id>_c<cam>s1_<j>.png``."""
    rng = np.random.default_rng(seed)
    for pid in range(len(pal)):
        d = root / f"{pid:04d}"
        d.mkdir(parents=True)
        for cam in (0, 1):
            for j in range(per_cam):
                img = Image.fromarray((person(rng, pal[pid], cam) * 255).astype(np.uint8))
                img.save(d / f"{pid:04d}_c{cam}s1_{j}.png")
    return root


def test_identity_and_camera_conventions(tmp_path: Path) -> None:
    ds = Dataset.open(make_identity_folder(tmp_path / "folder", palettes(3, 0), 1, 0))
    assert [identity_of(ds, r) for r in ds.images] == [1, 1, 2, 2, 3, 3]
    assert [camera_of(r) for r in ds.images] == [0, 1] * 3
    assert camera_of({"file_name": "x/0002_c6s1_000451_03.jpg"}) == 6 and camera_of({"file_name": "a.png"}) == 0
    assert camera_of({"camera": 4, "file_name": "0001_c2.png"}) == 4
    plain = Dataset.open(make_identities(tmp_path / "noid", palettes(2, 1), 1, 0, identity_field=False))
    with pytest.raises(DatasetError, match="noid.*no identities"):
        ReidTask().check_labels(plain, str(plain.root))


def test_targets_labels_and_query_gallery(tmp_path: Path) -> None:
    train = Dataset.open(make_identities(tmp_path / "a", palettes(3, 0), 2, 0))
    test = Dataset.open(make_identities(tmp_path / "b", palettes(2, 1), 2, 1, splits=True))
    task = ReidTask()
    task.register_domains([train])
    assert task.num_ids == 3 and task.state() == {"num_ids": 3}
    t = [task.target(train, r, (H, W)) for r in train.images]
    assert sorted({x["label"] for x in t}) == [0, 1, 2] and {x["pid"] for x in t} == {100, 101, 102}
    t2 = [task.target(test, r, (H, W)) for r in test.images]
    assert all(x["label"] == -1 for x in t2)  # query/gallery records never train the classifier
    qg = query_gallery(t2)
    assert qg["mode"] == "query/gallery splits" and len(qg["q"]) == 2 and len(qg["g"]) == 6
    allv = query_gallery(t)
    assert allv["mode"] == "all vs all" and len(allv["q"]) == len(allv["g"]) == 12
    one_cam = query_gallery([{"pid": p, "cam": 0, "split": None} for p in (1, 1, 2)])
    assert list(one_cam["q_cams"]) == [0, 1, 2]  # single camera: only the query itself is removed


def test_distance_and_loss() -> None:
    q, g = np.array([[3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(embedding_distance(q, g, "cosine"), [[1 - 0.6, 1 - 0.8]])
    want = [[np.sqrt(0.4**2 + 0.8**2), np.sqrt(0.6**2 + 0.2**2)]]
    np.testing.assert_allclose(embedding_distance(q, g, "euclidean"), want)
    np.testing.assert_allclose(embedding_distance(q, g, "euclidean", normalize=False), [[np.sqrt(20), np.sqrt(13)]])
    task = ReidTask(num_ids=3, triplet_weight=0.0, label_smoothing=0.0)
    logits = torch.randn(4, 3)
    targets = [{"label": 0}, {"label": -1}, None, {"label": 2}]
    out = {"logits": logits, "feat": torch.randn(4, 5), "emb": torch.randn(4, 5)}
    loss = task.loss(out, targets, torch.tensor([True, True, False, True]))
    want = torch.nn.functional.cross_entropy(logits[[0, 3]], torch.tensor([0, 2]))
    assert float(loss) == pytest.approx(float(want))


def test_tiny_reid_model_beats_chance(tmp_path: Path) -> None:
    """12 training identities; 16 unseen test identities x 2 cameras x 3 images, every image a query against
    the others (cross-camera matches only): rank-1 far above chance (about 1/16) and the untrained net."""
    from simreal.adapt.selection import all_targets, predict_all
    from simreal.adapt.steps import supervised_step
    from simreal.datasets.torchdata import FolderSource, balanced_batch

    torch.manual_seed(0)
    train = Dataset.open(make_identities(tmp_path / "train", palettes(12, 0), 4, 0))
    test = Dataset.open(make_identities(tmp_path / "test", palettes(16, 1), 3, 1))
    task = ReidTask(triplet_weight=1.0, triplet_margin=0.3, instances_per_identity=4)
    task.register_domains([train])
    src = task.wrap_source(FolderSource("train", 0, train, (H, W), 3, task.target))
    assert hasattr(src, "draw")
    b = balanced_batch([src], 0, 0, 16)
    assert sorted(np.bincount([t["label"] for t in b.targets]).tolist())[-4:] == [4, 4, 4, 4]
    model = task.build_model("smallcnn", 3, (H, W), width=8, embedding_dim=32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    tsrc = FolderSource("test", 0, test, (H, W), 3, task.target)
    untrained = task.evaluate(predict_all(task, model, tsrc), all_targets(tsrc), tmp_path)
    for step in range(150):
        supervised_step(model, task, balanced_batch([src], step, 0, 32), opt)
    preds = predict_all(task, model, tsrc)
    res = task.evaluate(preds, all_targets(tsrc), tmp_path)
    print("tiny re-id rank-1", res["rank1"], "mAP", res["mAP"], "untrained rank-1", untrained["rank1"])
    assert res["num_query"] == 96 and res["num_valid_queries"] == 96 and res["query_gallery"] == "all vs all"
    assert res["rank1"] >= 0.75 and res["mAP"] >= 0.7 and res["rank1"] >= untrained["rank1"] + 0.3
    assert res["cuhk03_rank1"] >= 0.75 and (tmp_path / "cmc.png").is_file()
    assert res["rank1"] <= res["rank5"] <= res["rank10"] <= res["rank20"]
    losses = task.sample_losses(preds, all_targets(tsrc))
    assert losses.shape == (len(tsrc),) and np.isfinite(losses).all()


def test_example_config_is_valid() -> None:
    from simreal.adapt.api import task_options
    from simreal.adapt.config import TrainConfig
    from simreal.config import load_config

    cfg = load_config(TrainConfig, Path(__file__).parents[2] / "configs" / "train" / "reid.yaml")
    task = ReidTask(0, [], num_ids=5, **task_options(cfg))
    assert task.triplet_weight == 1.0 and task.k == 4 and task.distance == "euclidean"
    model = task.build_model(cfg.model.arch, 3, tuple(cfg.data.image_size), embedding_dim=cfg.model.embedding_dim)
    assert model.feature_dim == 2048 and model.net.classifier.out_features == 5


def test_resnet_backbone_loads_torchvision_weights(tmp_path: Path) -> None:
    from simreal.adapt.api import build_model
    from simreal.adapt.config import TrainConfig
    from simreal.nn.resnet import resnet18

    src = resnet18(1000)
    with torch.no_grad():
        src.layer2[1].conv2.weight.normal_()
    torch.save(src.state_dict(), tmp_path / "r18.pth")
    cfg = TrainConfig.model_validate({"task": "reid", "data": {"domains": [{"path": "x"}]},
                                      "model": {"arch": "resnet18", "weights": str(tmp_path / "r18.pth")}})
    model = build_model(cfg, ReidTask(num_ids=7))
    torch.testing.assert_close(model.net.backbone.layer2[1].conv2.weight, src.layer2[1].conv2.weight)
    out, feat = model(torch.randn(2, 3, 64, 32))
    assert out["logits"].shape == (2, 7) and out["emb"].shape == (2, 128) and feat.shape == (2, 512)
