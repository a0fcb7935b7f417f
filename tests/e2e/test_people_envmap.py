"""Re-id crops in front of real HDR environment maps (background kind ``envmap``): the map behind the
person is the map seen along each pixel's camera ray, the map is the person's light, the person's
shadow falls on the map's ground and nowhere else, the labels do not depend on the background kind,
the bytes do not depend on the worker count, and missing maps are one line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy.ndimage import binary_dilation

from simreal.cli.main import main
from simreal.render import film
from simreal.render.lighting import env_radiance, env_to_world, load_hdr, write_hdr
from simreal.render.people.character import Character
from simreal.render.people.reid import parse_config, posed_view, render_character

pytestmark = [pytest.mark.usefixtures("anny_ready"), pytest.mark.slow]

BASE: dict[str, Any] = {
    "type": "people", "seed": 11, "count": 1, "views": 3, "resolution": [32, 64], "image_format": "png",
    "render": {"spp": 2, "max_depth": 2}, "camera": {"cameras": 3},
}


def _textured_map(path: Path, seed: int) -> None:
    """A map with structure everywhere (a wrong rotation, flip or tint shows) and a small sun."""
    rng = np.random.default_rng(seed)
    h, w = 32, 64
    img = (0.05 + rng.random((h, w, 3)) * np.linspace(1.0, 0.2, h)[:, None, None]).astype(np.float32)
    img[6:8, 10:12] = 400.0
    write_hdr(path, img)


def _config(folder: Path | str, **background: Any) -> dict[str, Any]:
    cfg = json.loads(json.dumps(BASE))
    cfg["background"] = {"weights": {"envmap": 1.0}, "hdr_folder": str(folder), **background}
    return cfg


def _render(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[np.ndarray], list[np.ndarray]]:
    from simreal.render.people.spec import PeopleConfig

    out = render_character((PeopleConfig.model_validate(cfg).model_dump_json(), cfg["seed"], 0))
    imgs = [np.asarray(Image.open(io.BytesIO(b))) for k, b in sorted(out["files"].items()) if k.startswith("images")]
    masks = [np.asarray(Image.open(io.BytesIO(b))) for k, b in sorted(out["files"].items()) if k.startswith("masks")]
    return out, imgs, masks


def _far(mask: np.ndarray) -> np.ndarray:
    """Pixels whose centre is 4+ pixels (Chebyshev) from every person pixel: beyond the reach of the
    gaussian pixel filter (2 pixels) from any part of the person, even one no pixel centre meets."""
    return ~binary_dilation(mask > 0, structure=np.ones((3, 3), bool), iterations=4)


@pytest.fixture(scope="module")
def maps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hdr")
    _textured_map(folder / "a.exr", 0)
    _textured_map(folder / "b.exr", 1)
    return folder


def test_background_is_the_map_along_each_pixel_ray_and_differs_per_view(maps: Path) -> None:
    cfg = _config(maps, hdr_shadows=False, hdr_white_balance=[4000.0, 9000.0])
    out, imgs, masks = _render(cfg)
    from simreal.render.people.spec import PeopleConfig

    pcfg, tex, _, _ = parse_config(PeopleConfig.model_validate(cfg).model_dump_json())
    ch = Character.build(out["params"]["character"], tex, pcfg.character.clothing.texture_size)
    from simreal.render.lighting import white_balance_gains

    seen = set()
    for rec, img, mask in zip(out["records"], imgs, masks, strict=True):
        view = rec["record"]["params"]["view"]
        env = view["background"]["envmap"]
        assert "light" not in view  # the map is the only light
        seen.add((env["file"], round(env["rotation"], 6)))
        cam = posed_view(pcfg, ch, view)[-1]
        dirs, _ = cam.pixel_rays()
        radiance = env_radiance(load_hdr(str(maps / env["file"])), dirs, env_to_world(env["rotation"]))
        radiance = radiance * white_balance_gains(env["white_balance"]) * env["intensity"]
        expected = film.to_uint8(film.develop(radiance * env["exposure"], "filmic"))
        far = _far(mask)
        assert far.sum() > 0.3 * far.size and mask.sum() > 0.1 * mask.size
        diff = np.abs(img[far].astype(int) - expected[far].astype(int))
        assert diff.max() <= 1, diff.max()
    assert len(seen) == len(out["records"])  # every view its own map and rotation


def test_the_map_lights_the_person_and_metering_is_incident(tmp_path: Path) -> None:
    """Constant coloured maps L: the background is L x intensity / luminance(L) exactly (an 18 % grey
    card under the map is exposed to mid grey), and the person takes the map's colour."""
    person_rgb = {}
    for name, rgb in (("red", (1.0, 0.35, 0.2)), ("blue", (0.2, 0.35, 1.0))):
        folder = tmp_path / name
        folder.mkdir()
        write_hdr(folder / f"{name}.exr", np.broadcast_to(np.float32(rgb) * 3.0, (16, 32, 3)).copy())
        cfg = _config(folder, hdr_shadows=False, hdr_white_balance=[6500.0, 6500.0], hdr_intensity=[0.5, 1.5])
        out, imgs, masks = _render(dict(cfg, views=2))
        colours = []
        for rec, img, mask in zip(out["records"], imgs, masks, strict=True):
            env = rec["record"]["params"]["view"]["background"]["envmap"]
            lum = float(np.float32(rgb) @ film.LUMA)
            expected = film.to_uint8(film.develop(np.float32(rgb) * env["intensity"] / lum, "filmic"))
            far = _far(mask)
            assert np.abs(img[far].astype(int) - expected.astype(int)).max() <= 1
            colours.append(img[mask > 0].astype(float).mean(axis=0))
        person_rgb[name] = np.mean(colours, axis=0)
    red, blue = person_rgb["red"], person_rgb["blue"]
    assert red[0] / red[2] > 1.5 * blue[0] / blue[2]


def test_shadow_darkens_only_the_ground_near_the_person(maps: Path) -> None:
    cfg = _config(maps, hdr_white_balance=[6500.0, 6500.0])
    _, with_shadow, masks = _render(cfg)
    _, without, masks_off = _render(_config(maps, hdr_shadows=False, hdr_white_balance=[6500.0, 6500.0]))
    darker = 0
    for a, b, mask, mask_off in zip(with_shadow, without, masks, masks_off, strict=True):
        assert np.array_equal(mask, mask_off)
        person = mask > 0
        assert np.array_equal(a[person & ~binary_dilation(~person, iterations=2)],
                              b[person & ~binary_dilation(~person, iterations=2)])  # the person: same pixels
        la, lb = a.astype(int).sum(-1), b.astype(int).sum(-1)
        assert (la <= lb + 3).all()  # a shadow only darkens (+ rounding of the tone curve)
        feet_row = int(np.nonzero(person.any(axis=1))[0].max())
        near = np.zeros_like(person)
        near[max(feet_row - 6, 0):feet_row + 4] = True
        near &= ~person
        darker += int((lb - la)[near].sum())
        assert np.array_equal(a[:5], b[:5])  # the top rows: map beyond the shadow window, untouched
    assert darker > 30  # contact shadow around the feet


def test_person_labels_do_not_depend_on_the_background_kind(maps: Path) -> None:
    out_env, _, masks_env = _render(_config(maps))
    for kind in ("plain", "room"):
        cfg = json.loads(json.dumps(BASE)) | {"background": {"weights": {kind: 1.0}}}
        out, _, masks = _render(cfg)
        assert all(np.array_equal(a, b) for a, b in zip(masks, masks_env, strict=True))
        for r, e in zip(out["records"], out_env["records"], strict=True):
            assert r["anns"] == e["anns"]  # box, mask RLE, keypoints and visibility, head point and box
            va, vb = r["record"]["params"]["view"], e["record"]["params"]["view"]
            same = {"camera_id", "azimuth", "height", "distance", "yaw", "pose"}
            assert {k: va[k] for k in same} == {k: vb[k] for k in same}


def _write(tmp: Path, cfg: dict) -> Path:
    p = tmp / "people.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for d in ("images", "masks") for p in sorted((root / d).iterdir())}


def test_cli_same_bytes_for_one_and_two_workers(tmp_path: Path, maps: Path, capsys) -> None:
    cfg = _config(maps) | {"count": 2, "views": 2}
    cfg["background"]["weights"] = {"plain": 1.0, "envmap": 3.0}
    path = _write(tmp_path, cfg)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["render", "-c", str(path), "-o", str(a), "-w", "1", "-q"]) == 0
    assert main(["render", "-c", str(path), "-o", str(b), "-w", "2", "-q"]) == 0
    assert _files(a) == _files(b) and len(_files(a)) == 8
    da, db = (json.loads((d / "annotations.json").read_text()) for d in (a, b))
    assert da["images"] == db["images"] and da["annotations"] == db["annotations"]
    kinds = [im["params"]["view"]["background"]["kind"] for im in da["images"]]
    assert "envmap" in kinds
    for im in da["images"]:
        env = im["params"]["view"]["background"].get("envmap")
        assert (env is not None) == (im["params"]["view"]["background"]["kind"] == "envmap")
        if env:
            assert env["file"] in ("a.exr", "b.exr") and env["exposure"] > 0
    capsys.readouterr()


def test_no_maps_is_one_line_naming_the_key(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (str(empty), "builtin:hdri"):
        monkeypatch.setenv("SIMREAL_HDRI_DIR", str(empty))  # builtin:hdri -> a folder without maps
        out = tmp_path / "o"
        assert main(["render", "-c", str(_write(tmp_path, _config(folder))), "-o", str(out), "-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "background.hdr_folder" in err and "Traceback" not in err
        assert not out.exists()
    # no envmap weight: the folder is never read
    cfg = _config(empty) | {"count": 1, "views": 1}
    cfg["background"]["weights"] = {"plain": 1.0}
    assert main(["render", "-c", str(_write(tmp_path, cfg)), "-o", str(tmp_path / "ok"), "-q"]) == 0
