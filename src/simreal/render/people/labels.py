"""Person labels from the render's label pass and the skeleton: mask, box, COCO keypoints with
visibility, head point and head box, and the person's rotation in the image.

COCO keypoint visibility: 2 = visible (the ray from the camera to the joint first meets this
person's surface within ``JOINT_DEPTH`` of the joint), 1 = inside the image but occluded (by another
object or by the person's own body), 0 = outside the image or behind the camera (x = y = 0)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simreal.datasets.coco import SIMREAL, mask_bbox, mask_to_rle
from simreal.render.people.body import PosedBody

JOINT_DEPTH = 0.15  # metres: how far under the first surface hit a joint may lie and count as visible


def _world(points: np.ndarray, xf: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ xf[:3, :3].T + xf[:3, 3]


def first_hits(backend: Any, scene: Any, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rays from the camera towards ``points``: index of the first instance hit (-1 none) and its distance.
    Reuses the acceleration structure of the backend's last render of ``scene``."""
    last_scene, mscene = getattr(backend, "_last", (None, None))
    if last_scene is not scene:
        mscene = backend._scene(scene, list(range(len(scene.instances))), False)
    o = scene.camera.origin
    d = np.asarray(points, np.float64) - o
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return backend.cast_rays(mscene, o, d)


Occluders = Callable[[np.ndarray], np.ndarray]  # world points (N, 3) -> distance to the first other occluder


def keypoints_coco(backend: Any, scene: Any, joints: np.ndarray, members: set[int],
                   occluders: Occluders | None = None) -> list[float]:
    """COCO ``[x, y, v] * K`` for world-space ``joints`` (K, 3) of the person made of ``members``.
    ``occluders``: distances along the camera rays to surfaces outside the rendered scene (furniture
    prisms of a composited photo); a joint behind one is occluded."""
    cam = scene.camera
    uv, ok = cam.project(joints)  # a fisheye's ``ok`` is its image circle
    inside = ok & (uv[:, 0] >= 0) & (uv[:, 1] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] < cam.height)
    hit, dist = first_hits(backend, scene, joints)
    if occluders is not None:
        blocked = occluders(joints) < dist
        hit = np.where(blocked, -1, hit)
    far = np.linalg.norm(joints - cam.origin, axis=1)
    out: list[float] = []
    for k in range(len(joints)):
        if not inside[k]:
            out += [0.0, 0.0, 0]
            continue
        vis = hit[k] in members and dist[k] >= far[k] - JOINT_DEPTH
        out += [round(float(uv[k, 0]), 2), round(float(uv[k, 1]), 2), 2 if vis else 1]
    return out


def projected_box(cam: Any, points: np.ndarray) -> list[float] | None:
    uv, ok = cam.project(points)
    if not ok.any():
        return None
    lo, hi = uv[ok].min(axis=0), uv[ok].max(axis=0)
    return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]


def person_annotation(backend: Any, scene: Any, body: PosedBody, xf: np.ndarray,
                      members: list[int], visible: np.ndarray, hair: list[Any] | None = None,
                      occluders: Occluders | None = None) -> dict[str, Any] | None:
    """The COCO annotation of one person (category 1) placed by ``xf``; None when no pixel is visible."""
    bb = mask_bbox(visible)
    if bb is None:
        return None
    cam = scene.camera
    kp_world = _world(body.coco_keypoints, xf)
    head = _world(body.head_vertices, xf)
    extra = [p.mesh.vertices for p in (hair or [])]
    head_pts = np.concatenate([head, *[_world(e, xf) for e in extra]]) if extra else head
    head_pt, _ = cam.project(_world(body.head_center[None], xf))
    body_pts = np.concatenate([scene.instances[i].mesh.vertices for i in members])
    feet = _world(((body.joint("foot.L") + body.joint("foot.R")) / 2)[None], xf)
    feet[:, 2] = 0.0
    foot_pt, _ = cam.project(feet)
    axis = head_pt[0] - foot_pt[0]
    rotation = float(np.degrees(np.arctan2(axis[0], -axis[1])))  # clockwise from image up
    kps = keypoints_coco(backend, scene, kp_world, set(members), occluders)
    return {
        "category_id": 1, "bbox": bb, "area": float(visible.sum()), "segmentation": mask_to_rle(visible),
        "iscrowd": 0, SIMREAL: {"instance_id": 1, "amodal_bbox": projected_box(cam, body_pts), "ignore": 0},
        "keypoints": kps, "num_keypoints": int(sum(1 for v in kps[2::3] if v > 0)),
        "head_point": [round(float(head_pt[0, 0]), 2), round(float(head_pt[0, 1]), 2)],
        "head_bbox": projected_box(cam, head_pts), "rotation": round(rotation, 2),
    }

