"""Crop-refine-reinsert: exact round trip with an identity refiner, only the object changes,
overlapping crops blend, rotated crops stand objects upright."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simreal.refine.crops import (
    ann_center,
    crop_refine_reinsert,
    extract_crops,
    feather_window,
    reinsert_deltas,
    snap_centers,
    upright_angles,
)


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (90, 110, 3), dtype=np.uint8)
    mask = np.zeros((90, 110), np.uint16)
    mask[20:34, 30:44] = 1
    mask[28:44, 40:52] = 2  # overlaps the first object's crop
    mask[60:75, 80:95] = 3
    centers = np.array([[36.5, 26.5], [45.5, 35.5], [87.0, 67.0]])
    return img, mask, centers


@pytest.mark.parametrize("rotate", [False, True])
def test_identity_refiner_round_trip_is_exact(rotate: bool) -> None:
    img, mask, centers = _scene()
    out = crop_refine_reinsert(
        img,
        centers,
        lambda x: x,
        32,
        instance_mask=mask,
        instance_ids=[1, 2, 3],
        rotate_upright=rotate,
        batch_size=2,
    )
    assert out.dtype == np.uint8
    assert np.array_equal(out, img)
    out2 = crop_refine_reinsert(img, centers, lambda x: x.clone(), 32, rotate_upright=rotate)
    assert np.array_equal(out2, img)


@pytest.mark.parametrize("rotate", [False, True])
def test_only_the_masked_objects_change(rotate: bool) -> None:
    img, mask, centers = _scene(1)
    out = crop_refine_reinsert(
        img,
        centers[:2],
        lambda x: torch.ones_like(x),
        32,
        instance_mask=mask,
        instance_ids=[1, 2],
        rotate_upright=rotate,
        reinsert="replace",
    )
    inside = np.isin(mask, [1, 2])
    assert np.array_equal(out[~inside], img[~inside])
    assert (out[inside] == 255).all()


def test_delta_reinsert_unrotated_is_exact_for_constant_refiner() -> None:
    img, mask, centers = _scene(2)
    out = crop_refine_reinsert(
        img, centers, lambda x: torch.full_like(x, -1.0), 32, instance_mask=mask, instance_ids=[1, 2, 3]
    )
    assert (out[mask > 0] == 0).all()
    assert np.array_equal(out[mask == 0], img[mask == 0])


def test_overlapping_crops_blend_smoothly() -> None:
    """Two overlapping crops pushing different constant changes: the blend is a convex, smooth mix."""
    shape = (3, 40, 60)
    ctr = snap_centers(torch.tensor([[24.0, 20.0], [36.0, 20.0]]), 24)
    deltas = torch.stack([torch.full((3, 24, 24), 0.2), torch.full((3, 24, 24), 0.6)])
    mean, cov = reinsert_deltas(shape, deltas, ctr, torch.zeros(2), feather=0.25)
    row = mean[0, 20]
    covered = cov[20] > 1e-8
    assert torch.all(row[covered] >= 0.2 - 1e-5) and torch.all(row[covered] <= 0.6 + 1e-5)
    steps = row[covered].diff().abs()
    assert float(steps.max()) < 0.1  # no hard seam where the crops meet
    assert float(row[14]) == pytest.approx(0.2, abs=1e-5) and float(row[45]) == pytest.approx(0.6, abs=1e-5)


def test_unrotated_crops_equal_slices_and_are_batched() -> None:
    img = torch.rand(3, 50, 70)
    ctr = snap_centers(torch.tensor([[20.0, 15.0], [40.3, 30.7], [60.0, 40.0]]), 16)
    crops = extract_crops(img, ctr, torch.zeros(3), 16)
    assert crops.shape == (3, 3, 16, 16)
    for c, (cx, cy) in zip(crops, ctr.tolist(), strict=True):
        x0, y0 = int(round(cx - 7.5)), int(round(cy - 7.5))
        if x0 + 16 <= 70 and y0 + 16 <= 50:
            assert torch.allclose(c, img[:, y0 : y0 + 16, x0 : x0 + 16], atol=1e-5)


def test_upright_rotation_points_away_from_centre() -> None:
    # an arrow-like object right of the centre pointing outward (+x) must point up in its crop
    img = torch.zeros(1, 81, 81)
    img[0, 38:43, 60:75] = 1.0  # bar along +x at the right
    img[0, 36:45, 72:75] = 1.0  # head at the far (outer) end
    ctr = snap_centers(torch.tensor([[67.0, 40.0]]), 24)
    ang = upright_angles(ctr, (40.0, 40.0))
    assert float(ang[0]) == pytest.approx(np.pi / 2, abs=0.05)
    crop = extract_crops(img, ctr, ang, 24)[0, 0]
    top, bottom = float(crop[:8].sum()), float(crop[-8:].sum())
    assert top > bottom  # the head (outer end) is at the top


def test_window_and_centres() -> None:
    w = feather_window(16, 0.25)
    assert float(w.min()) > 0 and float(w[8, 8]) == 1.0
    assert ann_center({"bbox": [10, 20, 4, 6]}) == (11.5, 22.5)
    assert ann_center({"point": [3, 4]}) == (3.0, 4.0)
    assert ann_center({"keypoints": [1, 1, 2, 3, 3, 2, 9, 9, 0]}) == (2.0, 2.0)
    assert ann_center({"bbox": []}) is None


def test_image_smaller_than_crop_is_rejected() -> None:
    with pytest.raises(ValueError, match="smaller than the crop size"):
        crop_refine_reinsert(np.zeros((20, 40, 3), np.uint8), np.array([[5.0, 5.0]]), lambda x: x, 32)


def test_annotation_rotation_sets_the_crop_up_direction() -> None:
    """Per-object angles (an annotation's ``rotation``) decide which image side is the crop's top: a
    refiner that brightens only the top half of each crop brightens that side of the object."""
    from simreal.refine.crops import ann_angle

    img = np.full((64, 64, 3), 100, np.uint8)

    def brighten_top(x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[:, :, : x.shape[2] // 2] += 0.5
        return y

    centre = np.array([[31.5, 31.5]])
    for rotation, side in ((90.0, "right"), (-90.0, "left"), (0.0, "top")):
        ang = ann_angle({"rotation": rotation})
        out = crop_refine_reinsert(img, centre, brighten_top, 16, rotate_upright=True,
                                   angles=np.array([ang]), feather=0.0).astype(int)
        changed = np.argwhere(out[..., 0] > 100)
        assert len(changed) > 20
        mean_y, mean_x = changed.mean(axis=0)
        expect = {"right": mean_x > 33, "left": mean_x < 30, "top": mean_y < 30}[side]
        assert expect, (rotation, mean_x, mean_y)
    # the same angles as computed from a centre give the same image as rotate_upright with that centre
    ctr = snap_centers(torch.tensor(centre, dtype=torch.float32), 16)
    up = upright_angles(ctr, (10.0, 31.5)).numpy()
    a = crop_refine_reinsert(img, centre, brighten_top, 16, rotate_upright=True, image_center=(10.0, 31.5))
    b = crop_refine_reinsert(img, centre, brighten_top, 16, rotate_upright=True, angles=up)
    assert np.array_equal(a, b)
    assert ann_angle({"bbox": [0, 0, 1, 1]}) is None
