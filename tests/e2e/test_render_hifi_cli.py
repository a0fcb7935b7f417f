"""The high-fidelity tier end to end: HDR lighting from a folder, grounded objects over photos and the
environment, exact labels; a missing HDR folder is one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from simreal.cli.main import main
from simreal.datasets import Dataset
from simreal.datasets.coco import mask_bbox

HIGH = Path(__file__).resolve().parents[2] / "src" / "simreal" / "configs" / "high.yaml"


def _hdr_folder(root: Path, texel: int = 1) -> Path:
    """Two small equirectangular maps: a sky with a sun, and an overcast one (32 × 16 cells of ``texel``²
    texels each)."""
    from simreal.render.lighting import write_hdr

    folder = root / "hdri"
    folder.mkdir()
    h, w = 16, 32
    sky = np.zeros((h, w, 3), np.float32)
    sky[: h // 2] = [0.4, 0.55, 0.8]
    sky[h // 2:] = [0.15, 0.12, 0.1]
    sunny = sky.copy()
    sunny[4, 9] = [4000.0 / texel**2, 3800.0 / texel**2, 3400.0 / texel**2]
    sky, sunny = (np.repeat(np.repeat(m, texel, 0), texel, 1) for m in (sky, sunny))
    write_hdr(folder / "sunny.exr", sunny)
    write_hdr(folder / "overcast.hdr", sky)
    return folder


def _tiny_high(root: Path, **changes: object) -> Path:
    cfg = yaml.safe_load(HIGH.read_text())
    cfg.update(count=4, seed=2, resolution=[40, 32])
    cfg["render"].update(spp=2, denoise=False)
    cfg["background"]["ground"]["catcher_spp"] = 2
    cfg["material"]["textures"]["size"] = 16
    cfg["objects"][0]["asset"]["canister"] = {"segments": 16}
    cfg["negatives"] = 0.0
    cfg.update(changes)
    path = root / "high.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_high_tier_renders_grounded_objects_with_exact_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    folder = _hdr_folder(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photos / "p.png")
    lighting = {"environment": {"kind": "hdr", "folder": str(folder), "intensity": [0.5, 2.0]},
                "lights": {"count": [0, 0]}}
    background = yaml.safe_load(HIGH.read_text())["background"]
    background["photo_folder"] = str(photos)
    cfg = _tiny_high(tmp_path, lighting=lighting, background=background, resolution=[48, 40])
    code = main(["render", "--config", str(cfg), "--out", str(tmp_path / "ds"), "--workers", "1", "-q"])
    assert code == 0, capsys.readouterr().err
    ds = Dataset.open(tmp_path / "ds")
    assert ds.info["provenance"]["config"]["tier"] == "high"
    coco = COCO(str(tmp_path / "ds" / "annotations.json"))
    kinds, maps = set(), set()
    for img in coco.loadImgs(coco.getImgIds()):
        params = img["params"]
        kinds.add(params["background"]["kind"])
        maps.add(params["environment"]["file"])
        assert all(o["placement"]["mode"] != "floating" for o in params["objects"])
        mask = ds.load_mask(img)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            visible = mask == ann["simreal"]["instance_id"]
            assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), visible)
            assert ann["bbox"] == mask_bbox(visible)
    assert maps <= {"sunny.exr", "overcast.hdr"} and kinds <= {"photo", "environment"}
    assert len(coco.getAnnIds()) >= 3  # objects are placed where the camera sees them
    # a contact sheet: the raw images, no masks or boxes drawn
    assert main(["dataset", "preview", str(tmp_path / "ds"), "-o", str(tmp_path / "sheet.png"), "--n", "4",
                 "--tile", "48", "--raw"]) == 0
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB"))
    first = Image.fromarray(ds.load_image(ds.images[0])).resize((48, 40), Image.Resampling.LANCZOS)
    assert np.array_equal(sheet[:40, :48], np.asarray(first))


def test_high_tier_without_hdr_maps_says_what_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    cfg = _tiny_high(tmp_path, lighting={"environment": {"kind": "hdr", "folder": str(tmp_path / "empty")}})
    code = main(["render", "--config", str(cfg), "--out", str(tmp_path / "out"), "--workers", "1", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert "lighting.environment.folder" in err and "blender-data" in err
    assert not (tmp_path / "out").exists()


def _far_from_objects_changed(ds: Dataset, reference: list[np.ndarray]) -> tuple[int, int]:
    """(pixels farther than 8 px from every object, how many of them differ from ``reference``): beyond
    the objects' soft edge (blur of the enlarged background) and the effects' 3-pixel fade."""
    from scipy.ndimage import distance_transform_edt

    far_pixels = changed = 0
    for rec, ref in zip(ds.images, reference, strict=True):
        mask = ds.load_mask(rec) > 0
        if not mask.any():
            continue
        far = distance_transform_edt(~mask) > 8
        far_pixels += int(far.sum())
        changed += int((ds.load_image(rec)[far] != ref[far]).any(axis=-1).sum())
    return far_pixels, changed


def _capture_config(tmp_path: Path, kind: str, post_scope: str, post_p: float) -> Path:
    """The tiny high tier over one background kind, objects only (no shadows, distractors or supports),
    every camera effect drawn with probability ``post_p``."""
    from PIL import Image

    folder = tmp_path / "hdri"
    if not folder.exists():  # maps 512 texels wide: enlarged about as much as the builtin ones at 256 px
        _hdr_folder(tmp_path, texel=16)
        photos = tmp_path / "photos"
        photos.mkdir()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photos / "p.png")
    high = yaml.safe_load(HIGH.read_text())
    background = {**high["background"], "weights": {kind: 1.0}, "photo_folder": str(tmp_path / "photos")}
    background["ground"] = {**background["ground"], "shadow_catcher": False}
    post = {name: {"p": post_p} for name in ("blur", "lut", "vignette", "grain", "jpeg")}
    return _tiny_high(tmp_path, lighting={"environment": {"kind": "hdr", "folder": str(folder)},
                                          "lights": {"count": [0, 0]}},
                      background=background, resolution=[64, 48], distractors={"count": [0, 0]},
                      placement={"weights": {"upright": 1.0}}, post=post,
                      film={**high["film"], "post_scope": post_scope})


@pytest.mark.parametrize("post_scope", ["rendered", "frame"])
@pytest.mark.parametrize("kind", ["photo", "environment"])
def test_camera_effects_touch_only_what_was_rendered_over_a_capture(tmp_path: Path, post_scope: str,
                                                                     kind: str) -> None:
    """With ``film.post_scope: rendered`` the background's pixels away from the objects (the photo, or the
    environment map's view) come through as they are although every camera effect is on; with ``frame``,
    the old behaviour, most of them change."""
    from simreal.config import load_config
    from simreal.render.build import background_image
    from simreal.render.spec import SceneConfig
    from simreal.render.textures import to_uint8

    cfg_path = _capture_config(tmp_path, kind, post_scope, 1.0)
    assert main(["render", "--config", str(cfg_path), "--out", str(tmp_path / "ds"), "--workers", "1", "-q"]) == 0
    ds = Dataset.open(tmp_path / "ds")
    assert all(rec["params"]["post"][name] for rec in ds.images for name in ("blur", "grain", "jpeg"))
    if kind == "photo":
        cfg = load_config(SceneConfig, cfg_path)
        reference = [to_uint8(background_image(cfg, rec["params"])) for rec in ds.images]
    else:  # the same scenes without camera effects (the effects' draws never shift the others)
        plain = _capture_config(tmp_path, kind, post_scope, 0.0)
        assert main(["render", "--config", str(plain), "--out", str(tmp_path / "plain"), "--workers", "1",
                     "-q"]) == 0
        reference = [Dataset.open(tmp_path / "plain").load_image(rec) for rec in ds.images]
    far_pixels, changed = _far_from_objects_changed(ds, reference)
    assert far_pixels > 1000
    if post_scope == "rendered":
        assert changed == 0
    else:
        assert changed > far_pixels // 2
