"""Procedural textures, colour sampling, texture folders and wear."""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest
from PIL import Image

from simreal.errors import AssetError, ConfigError
from simreal.render.textures import (
    TEXTURE_KINDS,
    hsv_to_rgb,
    load_texture,
    load_texture_folder,
    make_texture,
    random_color,
    sample_texture_params,
    value_noise,
)
from simreal.render.wear import apply_wear, sample_wear_params, scratch_masks


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_each_kind_deterministic_and_sized(kind):
    p = sample_texture_params(np.random.default_rng(3), [kind])
    assert p["kind"] == kind and json.loads(json.dumps(p)) == p
    a, b = make_texture(p, (40, 70)), make_texture(json.loads(json.dumps(p)), (40, 70))
    assert a.shape == (40, 70, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    n_colours = len(np.unique(a.reshape(-1, 3), axis=0))
    assert n_colours == 1 if kind == "solid" else n_colours >= 2


def test_seeds_differ():
    a = make_texture(sample_texture_params(np.random.default_rng(1), ["noise"]), (32, 32))
    b = make_texture(sample_texture_params(np.random.default_rng(2), ["noise"]), (32, 32))
    assert not np.array_equal(a, b)
    with pytest.raises(ConfigError, match="marble"):
        sample_texture_params(np.random.default_rng(1), ["marble"])


def test_checker_and_stripes_geometry():
    c = make_texture({"kind": "checker", "colors": [[0, 0, 0], [1, 1, 1]], "period": 0.25}, (32, 32))
    assert c[0, 0, 0] == 0 and c[0, 8, 0] == 255 and c[8, 0, 0] == 255 and c[8, 8, 0] == 0
    s = make_texture({"kind": "stripes", "colors": [[0, 0, 0], [1, 1, 1]], "period": 0.25, "angle": 0.0,
                      "duty": 0.5}, (32, 32))
    assert (s[:, :, 0] == s[:1, :, 0]).all()  # vertical stripes: constant down each column
    assert s[0, :16, 0].tolist() == ([255] * 4 + [0] * 4) * 2


def test_value_noise_range_and_tiling():
    n = value_noise((64, 128), 32, seed=7, octaves=4)
    assert n.dtype == np.float32 and n.min() == pytest.approx(0) and n.max() == pytest.approx(1)
    # tileable: the jump across the wrap is like the jump between neighbours
    wrap = np.abs(n[:, 0] - n[:, -1]).mean()
    inner = np.abs(np.diff(n, axis=1)).mean()
    assert wrap < 3 * inner
    assert np.array_equal(n, value_noise((64, 128), 32, seed=7, octaves=4))


def test_random_color_in_ranges():
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = random_color(rng, saturation=(0.5, 0.6), value=(0.3, 0.4))
        h, s, v = colorsys.rgb_to_hsv(*c)
        assert 0.5 - 1e-6 <= s <= 0.6 + 1e-6 and 0.3 - 1e-6 <= v <= 0.4 + 1e-6
    for h in np.linspace(0, 0.99, 13):
        assert np.allclose(hsv_to_rgb(h, 0.7, 0.8), colorsys.hsv_to_rgb(h, 0.7, 0.8))


def test_texture_folder(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        load_texture_folder(tmp_path / "missing")
    with pytest.raises(AssetError, match="no images"):
        load_texture_folder(tmp_path)
    Image.new("RGB", (8, 4), (10, 20, 30)).save(tmp_path / "b.png")
    Image.new("RGB", (8, 4), (10, 20, 30)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in load_texture_folder(tmp_path)] == ["a.jpg", "b.png"]
    assert load_texture(tmp_path / "b.png", size=(2, 3)).shape == (2, 3, 3)
    (tmp_path / "c.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(AssetError, match="c.png"):
        load_texture_folder(tmp_path)


def test_wear_params_json_and_deterministic():
    spec = {"dust": [0.3, 0.5], "grime": [0.2, 0.4], "scratches": [5, 5]}
    p = sample_wear_params(np.random.default_rng(4), spec)
    assert json.loads(json.dumps(p)) == p and len(p["scratches"]) == 5
    alb = np.full((64, 128, 3), 120, np.uint8)
    rough = np.full((64, 128), 0.5, np.float32)
    a1, r1 = apply_wear(alb, rough, p)
    a2, r2 = apply_wear(alb, rough, json.loads(json.dumps(p)))
    assert np.array_equal(a1, a2) and np.array_equal(r1, r2)
    assert a1.dtype == np.uint8 and r1.dtype == np.float32 and r1.shape == (64, 128)
    assert not np.array_equal(a1, alb)


def test_wear_effects_directions():
    alb = np.full((64, 128, 3), 60, np.uint8)
    rough = np.full((64, 128), 0.4, np.float32)
    base = {"dust": 0.0, "dust_seed": 1, "grime": 0.0, "grime_seed": 2, "scratches": []}
    a, r = apply_wear(alb, rough, base)
    assert np.array_equal(a, alb) and np.allclose(r, rough)
    a, r = apply_wear(alb, rough, {**base, "dust": 0.8, "dust_color": [0.6, 0.55, 0.5]})
    assert a.mean() > alb.mean() and r.mean() > 0.4  # lighter, rougher
    a, r = apply_wear(alb, rough, {**base, "grime": 0.8})
    assert a.mean() < alb.mean()
    scratch = {"points": [[0.1, 0.5], [0.9, 0.5]], "width": 0.05, "bright": True, "strength": 1.0}
    a, r = apply_wear(alb, rough, {**base, "scratches": [scratch]})
    assert a[32, 64].mean() > 150 and r[32, 64] < 0.3 and np.array_equal(a[5, 5], alb[5, 5])
    bright, dark = scratch_masks((64, 128), [scratch])
    assert bright[32, 64] == 1.0 and dark.max() == 0.0
