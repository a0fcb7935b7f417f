"""Post-effects and LUTs: identity, .cube round trip, reference interpolation, effect directions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simreal.errors import AssetError, ConfigError
from simreal.render.luts import (
    Lut3D,
    apply_lut,
    generated_luts,
    identity_lut,
    load_cube_folder,
    read_cube,
    write_cube,
)
from simreal.render.post import EFFECTS, apply_post, film_grain, jpeg_roundtrip, sample_post_params, vignette


@pytest.fixture(scope="module")
def img() -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:96]
    base = np.stack([xx / 95, yy / 63, 0.5 + 0.4 * np.sin(xx / 7.0) * np.cos(yy / 5.0)], -1)
    return (np.clip(base, 0, 1) * 255).round().astype(np.uint8)


def _trilinear_reference(table: np.ndarray, rgb) -> np.ndarray:
    n = table.shape[0]
    c = np.clip(np.asarray(rgb, float), 0, 1) * (n - 1)
    i0 = np.minimum(np.floor(c).astype(int), n - 2)
    f = c - i0
    out = np.zeros(3)
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                w = (f[0] if dr else 1 - f[0]) * (f[1] if dg else 1 - f[1]) * (f[2] if db else 1 - f[2])
                out += w * table[i0[0] + dr, i0[1] + dg, i0[2] + db]
    return out


def test_identity_lut_leaves_image_unchanged(img):
    x = img.astype(np.float32) / 255
    for size in (2, 17, 33):
        assert np.abs(apply_lut(x, identity_lut(size)) - x).max() < 1 / 255
    params = {"lut": {"name": "id", "strength": 1.0}}
    assert np.abs(apply_post(img, params, {"id": identity_lut(9)}).astype(int) - img).max() <= 1


def test_apply_lut_matches_per_pixel_reference():
    rng = np.random.default_rng(0)
    table = rng.random((5, 5, 5, 3)).astype(np.float32)
    pix = rng.random((7, 3)).astype(np.float32)
    pix[0] = [1.0, 0.0, 1.0]  # grid corner / upper edge
    got = apply_lut(pix[None], Lut3D(table))[0]
    for p, g in zip(pix, got, strict=True):
        assert np.allclose(g, _trilinear_reference(table, p), atol=1e-5)
    half = apply_lut(pix[None], Lut3D(table), strength=0.5)[0]
    assert np.allclose(half, 0.5 * pix + 0.5 * got, atol=1e-6)


def test_cube_round_trip(tmp_path):
    lut = generated_luts(9)["teal_orange"]
    path = tmp_path / "look.cube"
    write_cube(lut, path)
    back = read_cube(path)
    assert back.size == 9 and back.name == "look"
    assert np.allclose(back.table, lut.table, atol=1e-7)
    # red varies fastest in the file
    second = path.read_text().splitlines()[5].split()
    assert np.allclose([float(v) for v in second], lut.table[1, 0, 0], atol=1e-6)


def test_cube_parser_features(tmp_path):
    text = ["# a comment", 'TITLE "two"', "LUT_3D_SIZE 2", "DOMAIN_MIN 0 0 0", "DOMAIN_MAX 2 2 2", ""]
    for b in (0, 1):
        for g in (0, 1):
            for r in (0, 1):
                text.append(f"{r} {g} {b}  # r fastest")
    (tmp_path / "a.cube").write_text("\n".join(text))
    lut = read_cube(tmp_path / "a.cube")
    assert np.allclose(apply_lut(np.array([[[1.0, 0.5, 2.0]]]), lut), [[[0.5, 0.25, 1.0]]])
    one_d = ["LUT_1D_SIZE 3", "0 0 0", "0.25 0.5 0.5", "1 1 1"]
    (tmp_path / "b.cube").write_text("\n".join(one_d))
    lut1 = read_cube(tmp_path / "b.cube")
    assert np.allclose(apply_lut(np.array([[[0.5, 0.5, 0.25]]]), lut1), [[[0.25, 0.5, 0.25]]], atol=1e-6)
    luts = load_cube_folder(tmp_path)
    assert sorted(luts) == ["a", "b"]


@pytest.mark.parametrize(
    "lines, match",
    [
        (["LUT_3D_SIZE 2", "0 0 0", "1 0 0", "0 1 x"], "line 4"),
        (["LUT_3D_SIZE 2", "0 0 0", "1 0"], "line 3"),
        (["LUT_3D_SIZE two"], "line 1"),
        (["LUT_3D_SIZE 2", "FOO 1"], "line 2"),
        (["LUT_3D_SIZE 2", "0 0 0"], "expected 8 table rows"),
        (["0 0 0"], "LUT_3D_SIZE"),
    ],
)
def test_malformed_cube_names_file_and_line(tmp_path, lines, match):
    path = tmp_path / "bad.cube"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AssetError, match=match) as err:
        read_cube(path)
    assert "bad.cube" in str(err.value)


def test_missing_luts(tmp_path):
    with pytest.raises(AssetError, match="nope.cube"):
        read_cube(tmp_path / "nope.cube")
    with pytest.raises(AssetError, match="no .cube files"):
        load_cube_folder(tmp_path)
    with pytest.raises(AssetError, match="warm"):
        apply_post(np.zeros((4, 4, 3), np.uint8), {"lut": {"name": "warm", "strength": 1.0}}, {})


def test_generated_luts_are_distinct_and_in_range(img):
    luts = generated_luts()
    assert {"warm", "cool", "faded", "teal_orange", "high_contrast", "bleach_bypass", "cross_process"} <= set(luts)
    x = img.astype(np.float32) / 255
    outs = {k: apply_lut(x, v) for k, v in luts.items()}
    for k, o in outs.items():
        assert -1e-6 <= o.min() and o.max() <= 1.0 + 1e-6
        assert np.abs(o - x).mean() > 0.01, k
    assert outs["warm"][..., 0].mean() > x[..., 0].mean() > outs["cool"][..., 0].mean()


def test_vignette_darkens_corners_not_centre():
    x = np.full((64, 64, 3), 0.8, np.float32)
    v = vignette(x, strength=0.5, radius=0.5)
    assert np.allclose(v[32, 32], 0.8)
    assert v[0, 0].max() < 0.8 * 0.6
    assert v[0, 0, 0] < v[16, 16, 0] <= v[32, 32, 0]


def test_grain_mid_tones_and_determinism():
    x = np.full((64, 64, 3), 0.5, np.float32)
    g = film_grain(x, 0.04, 1.0, seed=1)
    assert np.std(g[..., 0]) == pytest.approx(0.04, rel=0.15)
    assert np.allclose(g[..., 0], g[..., 1])  # monochrome
    dark = film_grain(np.zeros_like(x), 0.04, 1.0, seed=1)
    assert np.std(dark) < 0.5 * np.std(g)
    assert np.array_equal(film_grain(x, 0.04, 2.0, seed=1), film_grain(x, 0.04, 2.0, seed=1))


def test_jpeg_quality_ordering(img):
    rng = np.random.default_rng(0)
    noisy = np.clip(img.astype(int) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    d100 = np.abs(jpeg_roundtrip(noisy, 100).astype(float) - noisy).mean()
    d10 = np.abs(jpeg_roundtrip(noisy, 10).astype(float) - noisy).mean()
    assert d100 < d10


def test_sample_and_apply_deterministic(img):
    luts = generated_luts()
    spec = {k: {"p": 1.0} for k in EFFECTS}
    p1 = sample_post_params(np.random.default_rng(5), spec, list(luts))
    p2 = sample_post_params(np.random.default_rng(5), spec, list(luts))
    assert p1 == p2 and json.loads(json.dumps(p1)) == p1
    assert all(p1[k] is not None for k in EFFECTS)
    out1, out2 = apply_post(img, p1, luts), apply_post(img, json.loads(json.dumps(p1)), luts)
    assert out1.dtype == np.uint8 and out1.shape == img.shape
    assert np.array_equal(out1, out2)
    p3 = sample_post_params(np.random.default_rng(6), spec, list(luts))
    assert not np.array_equal(apply_post(img, p3, luts), out1)


def test_probabilities_and_stream_stability(img):
    none = sample_post_params(np.random.default_rng(1), {k: {"p": 0.0} for k in EFFECTS}, ["warm"])
    assert all(v is None for v in none.values())
    assert np.array_equal(apply_post(img, none), img)
    a = sample_post_params(np.random.default_rng(1), {"blur": {"p": 0.0}, "grain": {"p": 1.0}}, ["warm"])
    b = sample_post_params(np.random.default_rng(1), {"blur": {"p": 1.0}, "grain": {"p": 1.0}}, ["warm"])
    assert a["grain"] == b["grain"]  # toggling blur does not shift the grain draws
    only = sample_post_params(np.random.default_rng(1), {"lut": {"p": 1.0, "names": ["cool"]}}, ["warm"])
    assert only["lut"]["name"] == "cool"
    assert sample_post_params(np.random.default_rng(1), {"lut_folder": "/x"}, []) is not None
    with pytest.raises(ConfigError, match="bloom"):
        sample_post_params(np.random.default_rng(1), {"bloom": {}}, [])
    with pytest.raises(ConfigError, match="post.blur.sigma"):
        sample_post_params(np.random.default_rng(1), {"blur": {"sigma": [2, 1]}}, [])
