"""The anny core: shape parameters move the mesh as documented, posing keeps the mesh closed and
follows the rig exactly, expressions stay on the face, the cache fails with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from simreal.errors import AssetError, ConfigError

pytestmark = pytest.mark.usefixtures("anny_ready")


def _rx(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rz(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_height_orders_child_below_adult_and_grounding() -> None:
    from simreal.render.people import body

    child = body.pose_body({"age": body.anny_age(6)})
    adult = body.pose_body({"age": body.anny_age(30)})
    tall = body.pose_body({"age": body.anny_age(30), "height": 0.9})
    assert child.height < 0.8 * adult.height
    assert adult.height < tall.height
    assert 1.4 < adult.height < 2.1
    for b in (child, adult):
        assert abs(float(b.vertices[:, 2].min())) < 1e-5  # feet on the floor
        np.testing.assert_allclose(b.joint("root")[:2], 0.0, atol=1e-5)  # pelvis above the origin


def test_weight_widens_the_waist() -> None:
    from simreal.render.people import body

    thin = body.pose_body({"weight": 0.05})
    heavy = body.pose_body({"weight": 0.95})
    m_thin, m_heavy = body.measurements(thin), body.measurements(heavy)
    assert m_heavy["waist_circumference"] > 1.08 * m_thin["waist_circumference"]
    assert m_heavy["mass"] > m_thin["mass"] + 5.0

    def waist_width(b: body.PosedBody) -> float:  # x extent of the torso at navel height
        z = 0.5 * (b.joint("spine03")[2] + b.joint("spine04")[2])
        band = b.vertices[np.abs(b.vertices[:, 2] - z) < 0.02]
        band = band[np.abs(band[:, 0]) < 0.25]  # not the hands
        return float(np.ptp(band[:, 0]))

    assert waist_width(heavy) > waist_width(thin) + 0.02


def test_facing_and_sides_follow_the_body_frame() -> None:
    from simreal.render.people import body

    b = body.pose_body({})
    assert b.keypoint("nose")[1] < b.joint("head")[1] - 0.05  # facing -Y
    assert b.keypoint("left_shoulder")[0] > 0 > b.keypoint("right_shoulder")[0]  # left side is +X
    turned = body.pose_body({}, body.BodyPose(root=_rz(180)))
    assert turned.keypoint("nose")[1] > turned.joint("head")[1] + 0.05
    assert body.COCO_KEYPOINTS == b.keypoint_names[:17]


def test_pose_from_world_rotates_the_limb_about_its_joint_and_stays_watertight() -> None:
    from simreal.render.people import body

    rest = body.pose_body({})
    g = _rx(-90)  # thigh forward
    posed = body.pose_body({}, body.pose_from_world({"upperleg01.L": g, "lowerleg01.L": g @ _rx(90)}))
    hip0, knee0, ankle0 = (rest.joint(n) for n in ("upperleg01.L", "lowerleg01.L", "foot.L"))
    hip = posed.joint("upperleg01.L")
    shift = hip - hip0  # grounding may move the whole body
    np.testing.assert_allclose(posed.joint("lowerleg01.L"), hip + g @ (knee0 - hip0), atol=1e-4)
    # the shin was turned back to vertical: the ankle hangs below the knee by the rest shin vector
    np.testing.assert_allclose(posed.joint("foot.L"), posed.joint("lowerleg01.L") + (ankle0 - knee0), atol=1e-4)
    np.testing.assert_allclose(posed.joint("upperleg01.R"), rest.joint("upperleg01.R") + shift, atol=1e-5)
    base = trimesh.Trimesh(rest.vertices, rest.faces)
    mesh = trimesh.Trimesh(posed.vertices, posed.faces)
    assert base.is_watertight and mesh.is_watertight
    assert mesh.euler_number == base.euler_number


def test_expression_moves_the_face_only_and_bad_names_fail() -> None:
    from simreal.render.people import body

    names = body.expression_names()
    assert len(names) == 52 and {"jawOpen", "eyeBlinkLeft", "mouthSmileRight", "tongueOut"} <= set(names)
    rest = body.pose_body({})
    open_jaw = body.pose_body({}, expression={"jawOpen": 1.0})
    assert open_jaw.expression["jawOpen"] == 1.0 and open_jaw.expression["eyeBlinkLeft"] == 0.0
    moved = np.linalg.norm(open_jaw.vertices - rest.vertices, axis=1) > 1e-4
    assert moved.sum() > 100
    assert moved[body.topology().head_mask].sum() / moved.sum() > 0.95
    assert open_jaw.keypoint("nose")[2] == pytest.approx(rest.keypoint("nose")[2], abs=5e-3)
    with pytest.raises(ConfigError, match="unknown facial action 'smile'"):
        body.pose_body({}, expression={"smile": 1.0})
    with pytest.raises(ConfigError, match=r"shape.weight: expected a value in \[0, 1\]"):
        body.pose_body({"weight": 1.5})
    with pytest.raises(ConfigError, match="unknown phenotype 'bmi'"):
        body.pose_body({"bmi": 0.5})


def test_same_inputs_same_bytes() -> None:
    from simreal.render.people import body

    a = body.pose_body({"age": 0.8, "weight": 0.3}, body.BodyPose(root=_rz(30)), {"jawOpen": 0.4})
    b = body.pose_body({"age": 0.8, "weight": 0.3}, body.BodyPose(root=_rz(30)), {"jawOpen": 0.4})
    assert a.vertices.tobytes() == b.vertices.tobytes()


def test_posing_leaves_autograd_on_for_the_rest_of_the_process() -> None:
    """simreal.render (people) then simreal.refine / train in one process: posing must not switch
    gradients off globally."""
    import torch

    from simreal.render.people.body import pose_body

    pose_body({"height": 0.4})
    assert torch.is_grad_enabled()
    w = torch.ones(2, requires_grad=True)
    (w * 3).sum().backward()
    assert w.grad is not None and float(w.grad[0]) == 3.0


def test_unbuildable_cache_is_one_clear_error(tmp_path, monkeypatch) -> None:
    from simreal.render.people import anny_cache

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(anny_cache.CACHE_ENV, str(blocker / "anny"))
    assert not anny_cache.cache_ready()
    with pytest.raises(AssetError, match="not built and cannot be built here"):
        anny_cache.require_cache(build=True)
    with pytest.raises(AssetError, match="not built; run `simreal people cache`"):
        anny_cache.require_cache(build=False)
