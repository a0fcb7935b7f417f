"""``simreal metrics fid/kid/pca`` end to end, including Inception weights supplied as a local file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simreal.cli.main import main
from simreal.nn.inception import FIDInceptionV3


def _folder(root: Path, n: int, shift: int, seed: int) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.clip(rng.integers(0, 200, (24, 24, 3)) + shift, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("metrics")
    return {
        "a": _folder(root / "a", 30, 0, 0),
        "a2": _folder(root / "a2", 30, 0, 1),
        "b": _folder(root / "b", 30, 50, 2),
        "root": root,
    }


def _run(args: list, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fid_kid_pca_with_pixel_features(sets: dict[str, Path], capsys) -> None:
    j = sets["root"] / "fid.json"
    code, out, err = _run(
        ["metrics", "fid", sets["a"], sets["a"], "--extractor", "pixels", "--allow-few-samples", "--json", j,
         "--device", "cpu"],
        capsys,
    )
    assert code == 0, err
    assert abs(json.loads(j.read_text())["fid"]) < 1e-6
    code, out, err = _run(
        ["metrics", "fid", sets["a"], sets["b"], "--extractor", "pixels", "--allow-few-samples"], capsys
    )
    far = float(out.split()[1])
    code, out, err = _run(
        [
            "metrics",
            "fid",
            sets["a"],
            sets["a2"],
            "--extractor",
            "pixels",
            "--allow-few-samples",
            "--method",
            "eigvals",
        ],
        capsys,
    )
    near = float(out.split()[1])
    assert 0 < near < far
    code, out, err = _run(
        [
            "metrics",
            "kid",
            sets["a"],
            sets["b"],
            "--extractor",
            "pixels",
            "--subset-size",
            "10",
            "--subsets",
            "5",
        ],
        capsys,
    )
    assert code == 0 and out.startswith("KID")
    png = sets["root"] / "pca.png"
    code, out, err = _run(
        ["metrics", "pca", sets["a"], sets["a2"], sets["b"], "-o", png, "--extractor", "pixels"], capsys
    )
    assert code == 0, err
    assert Image.open(png).format == "PNG"


def test_fid_with_local_inception_weights(sets: dict[str, Path], tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    code, out, err = _run(
        ["metrics", "fid", sets["a"], sets["b"], "--weights", weights, "--dims", "64", "--allow-few-samples"],
        capsys,
    )
    assert code == 0, err
    assert float(out.split()[1]) > 0


def test_metric_bad_inputs(sets: dict[str, Path], tmp_path: Path, capsys) -> None:
    code, _, err = _run(["metrics", "fid", sets["a"], sets["b"], "--weights", tmp_path / "nope.pth"], capsys)
    assert code == 2 and "weights file not found" in err
    code, _, err = _run(["metrics", "fid", sets["a"], sets["b"], "--extractor", "pixels"], capsys)
    assert code == 2 and "--allow-few-samples" in err  # 30 images, 192-d features
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(["metrics", "kid", empty, sets["b"], "--extractor", "pixels"], capsys)
    assert code == 2 and "no images" in err
    code, _, err = _run(["metrics", "fid", sets["a"], sets["b"], "--extractor", "clip"], capsys)
    assert code == 2 and "--extractor" in err
