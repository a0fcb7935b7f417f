"""Face alignment: the similarity fit against scikit-image, landmarks landing on dlib's template in
the chip (synthetic dots and a real face), and head-pose signals from a rotated 3-D head."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.faces.align import align_face, apply_affine, head_pose, similarity_transform, template_points


def _rot(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = (f(np.radians(a)) for a in (yaw, pitch, roll) for f in (np.cos, np.sin))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


# a 3-D head in image-like axes (x right, y down, z towards the camera), units of inter-eye distance:
# outer and inner corners of the eye on the image's right, the same on the left, base of the nose
HEAD3D = np.array([[0.75, 0.0, -0.1], [0.25, 0.0, 0.0], [-0.75, 0.0, -0.1], [-0.25, 0.0, 0.0], [0.0, 0.65, 0.35]])


def project(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, scale: float = 60.0,
            at: tuple[float, float] = (160.0, 120.0)) -> np.ndarray:
    p = HEAD3D @ _rot(yaw, pitch, roll).T
    return p[:, :2] * scale + np.asarray(at)


def test_similarity_matches_skimage() -> None:
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    dst = rng.uniform(0, 100, (5, 2))
    ref = SimilarityTransform.from_estimate(src, dst) if hasattr(SimilarityTransform, "from_estimate") else None
    if ref is None:
        ref = SimilarityTransform()
        ref.estimate(src, dst)
    np.testing.assert_allclose(similarity_transform(src, dst), ref.params[:2], atol=1e-9)


def _dots(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape, np.float64)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.5**2))
    return np.repeat((255 * img.clip(0, 1)).astype(np.uint8)[..., None], 3, 2)


@pytest.mark.parametrize("size", [112, 150])
def test_landmarks_land_on_the_template_in_the_chip(size: int) -> None:
    tpl = template_points(size, 0.3)
    th, s = np.radians(23.0), 2.3  # a rotated, scaled, shifted face: an exact similarity of the template
    m = np.array([[s * np.cos(th), -s * np.sin(th), 41.3], [s * np.sin(th), s * np.cos(th), 17.8]])
    lms = apply_affine(m, tpl)
    frame = _dots(lms, (480, 480))
    al = align_face(frame, lms, size, 0.3)
    np.testing.assert_allclose(al.landmarks, tpl, atol=1e-6)
    chip = al.chip[..., 0].astype(np.float64)
    yy, xx = np.mgrid[:size, :size]
    for tx, ty in tpl:  # the dot drawn at each landmark is centred on its template position
        w = chip * (np.hypot(xx - tx, yy - ty) < 7)
        cx, cy = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
        assert np.hypot(cx - tx, cy - ty) < 0.5, (cx, cy, tx, ty)


def test_real_face_chip_landmarks(tmp_path) -> None:  # noqa: ANN001
    from tests.e2e.faces_media import pyfeat_media

    from simreal.datasets.imageio import read_image
    from simreal.faces.detect import DetectorConfig, FaceDetector

    img = read_image(pyfeat_media(tmp_path, ["single_face.jpg"])["single_face.jpg"])
    det = FaceDetector(DetectorConfig(detect_scale=1.0))
    faces = det.detect(img)
    assert len(faces) == 1
    al = align_face(img, faces[0].landmarks, 150, 0.3)
    tpl = template_points(150, 0.3)
    assert np.abs(al.landmarks - tpl).max() < 6.0  # a least-squares fit of a real face to the template
    again = det.detect(al.chip)  # the predictor, run again on the chip, finds the landmarks where they were mapped
    assert len(again) == 1
    assert np.hypot(*(again[0].landmarks - al.landmarks).T).max() < 2.0


def test_head_pose_signals() -> None:
    base = head_pose(project())
    assert abs(base["yaw"]) < 1e-9 and abs(base["roll"]) < 1e-9
    yaws = [head_pose(project(yaw=a))["yaw"] for a in (-20, -10, 0, 10, 20)]
    assert np.all(np.diff(yaws) > 0.02)  # monotonic in the turn, ~0.06 per 10 degrees
    pitches = [head_pose(project(pitch=a))["pitch"] for a in (-20, -10, 0, 10, 20)]
    assert np.all(np.abs(np.diff(pitches)) > 0.02) and (np.all(np.diff(pitches) > 0) or np.all(np.diff(pitches) < 0))
    r = head_pose(project(roll=15))
    assert r["roll"] == pytest.approx(np.radians(15), abs=1e-6)
    assert r["yaw"] == pytest.approx(0.0, abs=1e-9) and r["pitch"] == pytest.approx(base["pitch"], abs=1e-9)
    assert head_pose(project(scale=120))["pitch"] == pytest.approx(base["pitch"])  # scale-free
