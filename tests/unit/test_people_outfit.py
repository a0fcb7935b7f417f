"""Garments cover their regions without the body poking through; poses keep the mesh closed; a
character record rebuilds the same person."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

pytestmark = pytest.mark.usefixtures("anny_ready")


def _through(body, mesh, mask, tol: float) -> float:
    """Fraction of covered body vertices lying outside the shell by more than ``tol`` (along the
    normal of the nearest shell vertex)."""
    from scipy.spatial import cKDTree

    v = body.vertices[mask].astype(np.float64)
    tree = cKDTree(mesh.vertices)
    _, j = tree.query(v)
    out = np.einsum("ij,ij->i", v - mesh.vertices[j], mesh.normals[j])
    return float((out > tol).mean())


@pytest.mark.parametrize("pose", ["standing", "walking", "sitting"])
def test_garments_cover_their_regions_and_nothing_pokes_through(pose: str) -> None:
    from simreal.render.people import body as B
    from simreal.render.people.outfit import garment_mask, measure_regions, shell, vertex_groups
    from simreal.render.people.poses import build_pose, sample_pose

    neutral = B.pose_body({"weight": 0.6})
    regions = measure_regions(neutral)
    posed = B.pose_body({"weight": 0.6}, build_pose(sample_pose(np.random.default_rng(1), pose)))
    g = vertex_groups()
    tee, shirt, trousers, shorts = (garment_mask(k, regions) for k in ("tshirt", "shirt", "trousers", "shorts"))
    arms = g == 2
    # sleeves: a T-shirt covers the top of the arm only, a shirt nearly all of it
    assert 0.15 < tee[arms].mean() < 0.5 and shirt[arms].mean() > 0.9
    assert trousers[g == 3].mean() > 0.95 and 0.25 < shorts[g == 3].mean() < 0.6
    assert not (tee & (g == 7)).any() and not (trousers & (g == 2)).any()  # no head in tops, no arms in trousers
    for mask, thick in ((shirt, 0.009), (trousers, 0.006)):
        m = shell(posed, mask, thick)
        assert len(m.faces) > 0.9 * mask[posed.faces].all(axis=1).sum()
        assert _through(posed, m, mask, tol=0.004) < 0.01  # only in folds (armpits, crotch)


def test_walking_and_sitting_bodies_stay_watertight() -> None:
    from simreal.render.people import body as B
    from simreal.render.people.poses import build_pose, sample_pose

    rng = np.random.default_rng(0)
    for name in ("walking", "sitting"):
        b = B.pose_body({}, build_pose(sample_pose(rng, name)))
        assert trimesh.Trimesh(b.vertices, b.faces).is_watertight


def test_sitting_thighs_are_horizontal_and_walking_legs_apart() -> None:
    from simreal.render.people import body as B
    from simreal.render.people.poses import build_pose

    sit = B.pose_body({}, build_pose({"name": "sitting", "hip_flex": 90, "knee_flex": 90, "torso_tilt": 0,
                                      "leg_spread": 0, "upperarm_forward": 20, "elbow_flex": 60}))
    thigh = sit.joint("lowerleg01.L") - sit.joint("upperleg01.L")
    assert abs(thigh[2]) < 0.1 * np.linalg.norm(thigh) and thigh[1] < 0  # forward, level
    shin = sit.joint("foot.L") - sit.joint("lowerleg01.L")
    assert shin[2] < -0.9 * np.linalg.norm(shin)
    seps = []
    for phase in np.linspace(0, 1, 8, endpoint=False):
        walk = B.pose_body({}, build_pose({"name": "walking", "phase": phase, "source": "deepmimic"}))
        seps.append(float(walk.joint("foot.L")[1] - walk.joint("foot.R")[1]))
    assert max(seps) > 0.2 and min(seps) < -0.2  # each foot in turn well ahead of the other


def test_character_record_rebuilds_the_same_person() -> None:
    from simreal.render.people.character import Character, CharacterSpec, sample_character

    spec = CharacterSpec()
    a = sample_character(np.random.default_rng(5), spec, 7)
    assert a == sample_character(np.random.default_rng(5), spec, 7)
    pose = {"name": "standing", "arm_abduction": 8, "elbow_flex": 10, "arm_swing": 0, "weight_shift": 0}
    _, p1 = Character.build(a).dressed(pose)
    _, p2 = Character.build(a).dressed(pose)
    assert [p.kind for p in p1] == [p.kind for p in p2]
    assert all(x.mesh.vertices.tobytes() == y.mesh.vertices.tobytes() for x, y in zip(p1, p2, strict=True))
    assert {"skin", "shoes"} <= {p.kind for p in p1}
