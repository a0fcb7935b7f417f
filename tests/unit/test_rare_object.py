"""The rare-object benchmark's data and table: real canvases without the rare digit for training and with it
in about half of the test canvases, exact instance masks, determinism, and the target verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simreal.bench.rare_object import ROWS, format_table, targets_report
from simreal.bench.rare_object_data import RareObjectData, real_canvas, real_digit_split, write_seed
from simreal.datasets.contract import Dataset


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cfg = RareObjectData(n_real_train=12, n_real_test=24, n_synthetic=12)
    return write_seed(tmp_path_factory.mktemp("rare"), 0, cfg)


def _with_rare(ds: Dataset) -> int:
    return sum(any(a["category_id"] == 8 for a in ds.anns(r)) for r in ds.images)  # category "7" has id 8


def test_domains_hold_the_rare_digit_where_they_should(folders: dict[str, Path]) -> None:
    ds = {k: Dataset.open(v) for k, v in folders.items()}
    assert _with_rare(ds["real_train"]) == 0  # never in the real training canvases
    assert 6 <= _with_rare(ds["real_test"]) <= 18  # about half of 24
    for name in ("low", "high", "real_oracle"):
        assert _with_rare(ds[name]) >= 4, name  # about 60 % of 12
    assert ds["real_test"].domain == "real" and ds["low"].domain == "synthetic"
    for d in ds.values():
        assert d.class_names == [str(i) for i in range(10)]
        for rec in d.images:
            anns = d.anns(rec)
            assert 1 <= len(anns) <= 6
            inst = d.load_mask(rec)
            assert 96 <= inst.shape[0] <= 128 and 96 <= inst.shape[1] <= 128
            for a in anns:  # the mask of each instance is its own ink; the box is the mask's box
                m = inst == a["simreal"]["instance_id"]
                ys, xs = np.nonzero(m)
                assert m.sum() == a["area"] >= 8
                assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
                assert np.array_equal(d.ann_mask(a), m)


def test_canvases_are_deterministic_and_ink_is_where_the_mask_is() -> None:
    cfg = RareObjectData()
    photo = np.full((200, 200, 3), 240, np.uint8)  # a bright, flat "photo": the ink is dark
    split = real_digit_split(1, cfg.rare)
    a = real_canvas(1, 3, 1, cfg, [photo], split["train_x"], split["train_y"], "never")
    b = real_canvas(1, 3, 1, cfg, [photo], split["train_x"], split["train_y"], "never")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    img, inst, classes = a
    assert cfg.rare not in classes and len(classes) == int(inst.max())
    lum = img.mean(2)
    assert lum[inst > 0].mean() < 140 < lum[inst == 0].mean()  # ink under the masks, background elsewhere
    tr, te = split["train_x"], split["test_x"]
    assert len(tr) + len(te) == 1797 and not any(np.array_equal(tr[0], x) for x in te[:50])


def test_table_and_targets_say_met_or_not_with_numbers() -> None:
    res = []
    for arch, aucs in (("classifier", (0.70, 0.76, 0.72, 0.95)), ("maskrcnn", (0.60, 0.62, 0.61, 0.9))):
        for row, auc in zip(ROWS, aucs, strict=True):
            for seed in (0, 1):
                res.append({"arch": arch, "row": row, "seed": seed, "auc": auc + 0.01 * seed,
                            "rare_bbox_ap50": 0.1, "rare_segm_ap50": 0.08, "rare_segm_ap": 0.03})
    summary = {"results": res, "wall_s": 600.0, "config": {"seeds": [0, 1], "archs": ["classifier", "maskrcnn"],
                                                           "rows": list(ROWS), "workers": 2, "data": {"rare": 7}}}
    lines = targets_report(summary)
    assert "classifier (ResNet-18): best adapted row '+ layer-4 DANN' +6.0 AUC points" in lines[1]
    assert "(met, target +3.0)" in lines[1]
    assert "+2.0 AUC points" in lines[2] and "NOT met" in lines[2]
    assert "multi-level 61.5 vs layer-4 62.5" in lines[3] and "NOT met" in lines[3]
    table = format_table(summary)
    assert "| classifier (ResNet-18) | + layer-4 DANN | 76.5 ± 0.5 |" in table
    assert "| Mask R-CNN (ResNet-18 FPN) | oracle (real rare labelled) | 90.5 ± 0.5 | 10.0 ± 0.0 |" in table


def test_pretrained_backbone_is_cached_and_loads_into_every_architecture(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from simreal.bench.rare_object import ARCH_NAMES, _task
    from simreal.bench.rare_object_pretrain import PretrainConfig, digit_crops, load_backbone, pretrained_backbone

    monkeypatch.setenv("SIMREAL_CACHE", str(tmp_path))
    cfg = PretrainConfig(crops=40, steps=2, batch=8)
    xs, ys = digit_crops(cfg)
    assert xs.shape == (40, 48, 48, 3) and set(ys.tolist()) <= set(range(11)) and len(set(ys.tolist())) > 5
    path = pretrained_backbone(cfg, log=lambda s: None)
    assert path.parent == tmp_path / "bench" / "rare_object" and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert pretrained_backbone(cfg, log=lambda s: None) == path and path.stat().st_mtime_ns == stamp  # reused
    assert pretrained_backbone(PretrainConfig(crops=40, steps=3, batch=8), log=lambda s: None) != path  # keyed
    from safetensors.torch import load_file

    state = load_file(str(path))
    assert not any(k.startswith("fc.") for k in state)
    for arch, where in (("classifier", "backbone."), ("unet", "net.encoder."), ("maskrcnn", "net.backbone.body.")):
        model = _task(arch).build_model(ARCH_NAMES[arch], 3, (64, 64), base_width=16)
        load_backbone(model, arch, path)
        own = model.state_dict()
        assert torch.equal(own[where + "layer3.1.conv2.weight"], state["layer3.1.conv2.weight"]), arch
