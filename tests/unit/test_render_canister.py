"""The parametric canister: reproducible from params, dents inward only, label text visible."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import trimesh

from simreal.errors import ConfigError
from simreal.render.canister import PARTS, canister_parts, canister_textures, sample_canister_params
from simreal.render.primitives import signed_volume

SIZE = (64, 128)


def _params(seed: int, **spec) -> dict:
    return sample_canister_params(np.random.default_rng(seed), spec or None)


def test_params_are_json_and_deterministic():
    a, b = _params(3), _params(3)
    assert json.loads(json.dumps(a)) == a
    assert a == b
    assert _params(4) != a


def test_same_params_identical_arrays():
    p = _params(11)
    m1, m2 = canister_parts(p), canister_parts(json.loads(json.dumps(p)))
    t1, t2 = canister_textures(p, SIZE), canister_textures(copy.deepcopy(p), SIZE)
    for k in PARTS:
        assert np.array_equal(m1[k].vertices, m2[k].vertices) and np.array_equal(m1[k].faces, m2[k].faces)
    assert t1.keys() == t2.keys()
    for k in t1:
        assert np.array_equal(t1[k], t2[k])


def test_different_seeds_differ():
    t1, t2 = canister_textures(_params(1), SIZE), canister_textures(_params(2), SIZE)
    assert not np.array_equal(t1["body"], t2["body"])
    assert not np.array_equal(canister_parts(_params(1))["body"].vertices,
                              canister_parts(_params(2))["body"].vertices)


def test_object_space_convention_and_closed_parts():
    p = _params(5)
    parts = canister_parts(p)
    assert set(parts) == set(PARTS)
    lo = np.min([m.bounds[0] for m in parts.values()], axis=0)
    hi = np.max([m.bounds[1] for m in parts.values()], axis=0)
    assert lo[2] == pytest.approx(0.0, abs=1e-6) and hi[2] == pytest.approx(1.0, abs=1e-5)
    assert parts["body"].meta["world_scale"] == p["height"]
    assert 0.10 <= p["height"] <= 0.16
    for name in ("body", "band"):
        m = parts[name]
        assert trimesh.Trimesh(m.vertices, m.faces).is_watertight, name
        assert signed_volume(m) > 0
        assert m.uvs is not None and m.uvs.min() >= 0 and m.uvs.max() <= 1
    body = parts["body"]
    r = p["body"]["radius"]
    assert body.vertices[:, 2].max() == pytest.approx(p["body"]["height"], abs=1e-6)
    assert np.hypot(body.vertices[:, 0], body.vertices[:, 1]).max() == pytest.approx(r, rel=1e-5)


def test_dents_move_vertices_inward_only():
    spec = {"wear": {"dents": [3, 3]}}
    p = _params(7, **spec)
    assert len(p["dents"]) == 3
    flat = copy.deepcopy(p)
    flat["dents"] = []
    v_dent, v_flat = canister_parts(p)["body"].vertices, canister_parts(flat)["body"].vertices
    rho_d, rho_f = np.hypot(*v_dent[:, :2].T), np.hypot(*v_flat[:, :2].T)
    assert np.allclose(v_dent[:, 2], v_flat[:, 2])
    assert (rho_d <= rho_f + 1e-6).all()
    assert (rho_f - rho_d).max() > 0.5 * max(d["depth"] for d in p["dents"])
    assert signed_volume(canister_parts(p)["body"]) < signed_volume(canister_parts(flat)["body"])


def test_texture_sizes_and_types():
    tex = canister_textures(_params(9), size=(48, 96))
    for part in PARTS:
        assert tex[part].shape == (48, 96, 3) and tex[part].dtype == np.uint8
        rough = tex[f"{part}_roughness"]
        assert rough.shape == (48, 96) and rough.dtype == np.float32
        assert 0.0 <= rough.min() and rough.max() <= 1.0


def test_text_changes_label_pixels():
    p = _params(12, wear={"dust": [0, 0], "grime": [0, 0], "scratches": [0, 0]})
    a = canister_textures(p, (128, 256))["body"]
    q = copy.deepcopy(p)
    q["label"]["text"] = "XYZZY 42"
    b = canister_textures(q, (128, 256))["body"]
    diff = np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 30
    assert diff.sum() > 50
    # text in the label colour really is on the body texture
    text = np.asarray(p["colors"]["text"]) * 255
    assert (np.abs(a.astype(float) - text).sum(axis=2) < 40).sum() > 30


def test_user_text_and_colors():
    p = _params(0, label_texts=["HELLO"], body_colors=["#ff0000"], band_colors="random")
    assert p["label"]["text"] == "HELLO"
    assert p["colors"]["body"] == [1.0, 0.0, 0.0]
    with pytest.raises(ConfigError, match="body_colors"):
        _params(0, body_colors=[[2.0, 0, 0]])
    with pytest.raises(ConfigError, match="label_texts"):
        _params(0, label_texts=[])


def test_small_part_step_shrinks_cap_and_band_only():
    full = canister_textures(_params(9), size=(48, 96))
    small = canister_textures(_params(9), size=(48, 96), small_part_step=2)
    assert np.array_equal(small["body"], full["body"])
    for part in ("cap", "band"):
        assert small[part].shape == (24, 48, 3) and small[f"{part}_roughness"].shape == (24, 48)
