"""anny bodies: the model (once per process), shape sampling, posing, and the posed-body record.

Body frame (every people module uses it): metres, right-handed, **+Z up**, the lowest vertex on
``z = 0``, the pelvis (root bone) above ``x = y = 0``, the person **facing -Y**, their left side
towards **+X**. anny's rest pose is an A-pose (arms about 45 degrees down).

Poses are :class:`BodyPose` records: per-bone rotations in anny's ``local-ref`` parameterisation,
i.e. the rotation of each bone relative to its parent, *expressed in world-aligned axes of the
rest pose* (a rotation about +X bends any joint about the body's left-right axis). Use
:func:`pose_from_world` to turn per-bone world rotations into such a record.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simreal.errors import ConfigError

# Phenotype parameters of the model, each in [0, 1] (anny's names). ``gender`` 0 = male, 1 = female;
# ``age`` is anny's age axis (use :func:`anny_age` to convert years); the last three are the ethnicity blend.
PHENOTYPES: tuple[str, ...] = ("gender", "age", "muscle", "weight", "height", "proportions", "cupsize", "firmness",
                               "african", "asian", "caucasian")

# The 17 COCO person keypoints, in COCO order, then anny's 6 foot keypoints.
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
COCO_SKELETON: tuple[tuple[int, int], ...] = (  # COCO's 1-based limb list
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9), (8, 10), (9, 11),
    (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)

HEAD_BONES = ("head", "eye.L", "eye.R")


@dataclass
class BodyPose:
    """A pose: ``rotations`` maps bone name -> 3x3 parent-relative rotation in world-aligned axes
    (anny ``local-ref``; bones not named keep their rest orientation relative to their parent);
    ``root`` is the 3x3 rotation of the whole body about the pelvis."""

    rotations: dict[str, np.ndarray] = field(default_factory=dict)
    root: np.ndarray = field(default_factory=lambda: np.eye(3))


@dataclass
class PosedBody:
    """One posed anny body in the body frame (see the module docstring).

    ``vertices`` (V, 3) float32, ``faces`` (F, 3) int32 (counter-clockwise from outside), ``normals``
    (V, 3); ``rest_vertices`` the unposed shape (same grounding convention); ``joints`` (J, 3) the bone
    heads and ``bone_matrices`` (J, 4, 4) the posed bone frames, both in ``joint_names`` order;
    ``keypoints`` (23, 3) from anny's regressor (``keypoint_names``: the 17 COCO joints, then 6 foot
    points); ``expression`` every facial action name -> intensity in [0, 1]; ``shape`` the phenotype."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    rest_vertices: np.ndarray
    joints: np.ndarray
    joint_names: tuple[str, ...]
    bone_matrices: np.ndarray
    keypoints: np.ndarray
    keypoint_names: tuple[str, ...]
    expression: dict[str, float]
    shape: dict[str, float]
    uvs: np.ndarray | None = None
    uv_faces: np.ndarray | None = None

    def joint(self, name: str) -> np.ndarray:
        """Head position (3,) of bone ``name``."""
        return self.joints[_index(self.joint_names, name, "bone")]

    def bone_matrix(self, name: str) -> np.ndarray:
        """Posed 4x4 frame of bone ``name`` (columns: the bone's axes; last column: its head)."""
        return self.bone_matrices[_index(self.joint_names, name, "bone")]

    def keypoint(self, name: str) -> np.ndarray:
        return self.keypoints[_index(self.keypoint_names, name, "keypoint")]

    @property
    def coco_keypoints(self) -> np.ndarray:
        """(17, 3) COCO person keypoints in COCO order."""
        return self.keypoints[:17]

    @property
    def head_vertices(self) -> np.ndarray:
        """Vertices of the head (skinned mainly to the head and eye bones)."""
        return self.vertices[topology().head_mask]

    @property
    def head_center(self) -> np.ndarray:
        """Centre of the head's bounding box: the head point of head-detection labels."""
        v = self.head_vertices
        return (v.min(axis=0) + v.max(axis=0)) / 2.0

    @property
    def height(self) -> float:
        """Standing (rest) height in metres."""
        return float(np.ptp(self.rest_vertices[:, 2]))


def _index(names: tuple[str, ...], name: str, what: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        raise ConfigError(f"unknown {what} {name!r}") from None


# model ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def load_model() -> Any:
    """The anny model (float32, CPU, inference only), loaded once per process; builds the cache on
    first use on this machine (see :mod:`simreal.render.people.anny_cache`)."""
    import torch

    from simreal.render.people.anny_cache import _construct, require_cache

    with torch.no_grad():  # never torch.set_grad_enabled(False): training later in this process needs grads
        model = _construct(require_cache(build=True))
    model.requires_grad_(False)
    model.eval()
    return model


@dataclass(frozen=True)
class Topology:
    """Per-process constants of the model: mesh connectivity, bones and vertex labels."""

    faces: np.ndarray
    bone_names: tuple[str, ...]
    bone_parents: np.ndarray
    dominant_bone: np.ndarray  # (V,) index of the bone with the largest skinning weight
    head_mask: np.ndarray  # (V,) bool
    expression_names: tuple[str, ...]
    keypoint_weights: np.ndarray  # (K, V)
    keypoint_names: tuple[str, ...]
    uvs: np.ndarray | None
    uv_faces: np.ndarray | None

    def bone(self, name: str) -> int:
        return _index(self.bone_names, name, "bone")


@functools.lru_cache(maxsize=1)
def topology() -> Topology:
    import anny

    model = load_model()
    names = tuple(model.bone_labels)
    idx = model.vertex_bone_indices.cpu().numpy()
    w = model.vertex_bone_weights.cpu().numpy()
    dominant = idx[np.arange(len(idx)), np.argmax(w, axis=1)].astype(np.int32)
    head = np.isin(dominant, [names.index(b) for b in HEAD_BONES])
    reg = anny.KeypointsRegressor.coco(model)
    uvs = model.texture_coordinates
    uvf = model.face_texture_coordinate_indices
    return Topology(
        faces=model.faces.cpu().numpy().astype(np.int32),
        bone_names=names,
        bone_parents=np.asarray(model.bone_parents, dtype=np.int64),
        dominant_bone=dominant,
        head_mask=head,
        expression_names=tuple(model.facial_action_labels),
        keypoint_weights=reg.regression_weights.cpu().numpy().astype(np.float32),
        keypoint_names=tuple(reg.labels),
        uvs=None if uvs is None else uvs.cpu().numpy().astype(np.float32),
        uv_faces=None if uvf is None else uvf.cpu().numpy().astype(np.int32),
    )


def bone_names() -> tuple[str, ...]:
    """Names of the rig's 104 bones (anny's compact ``anny`` rig), parents before children."""
    return topology().bone_names


def expression_names() -> tuple[str, ...]:
    """The 52 ARKit-style facial action blendshape names (``jawOpen``, ``eyeBlinkLeft``, ...)."""
    return topology().expression_names


# shape -----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _age_anchors() -> tuple[np.ndarray, np.ndarray]:
    import torch
    from anny.paths import get_anny_root_dir

    d = torch.load(get_anny_root_dir() / "data" / "shape_calibration" / "boys.pth", weights_only=True)
    m = d["morphological_age_mapping"]
    return m["morphological_age_anchors"].numpy(), m["anny_age_anchors"].numpy()


def anny_age(years: float) -> float:
    """anny's age parameter for an age in years (anny's morphological-age calibration to WHO
    height-for-age data: 1 y -> 0.05, 11 y -> 0.415, 18 y -> 0.77, 64 y -> 0.83)."""
    ys, a = _age_anchors()
    return float(np.clip(np.interp(years, ys, a), 0.0, 1.0))


def check_shape(shape: Mapping[str, float]) -> dict[str, float]:
    """A full phenotype dict (defaults 0.5) after checking names and the [0, 1] range."""
    out = dict.fromkeys(PHENOTYPES, 0.5)
    for k, v in shape.items():
        if k not in out:
            raise ConfigError(f"shape: unknown phenotype {k!r} (expected one of {', '.join(PHENOTYPES)})")
        if not 0.0 <= float(v) <= 1.0:
            raise ConfigError(f"shape.{k}: expected a value in [0, 1], got {v}")
        out[k] = float(v)
    return out


def check_expression(expression: Mapping[str, float] | None) -> dict[str, float]:
    """Every expression name -> intensity (default 0) after checking names and the [0, 1] range."""
    names = expression_names()
    out = dict.fromkeys(names, 0.0)
    for k, v in (expression or {}).items():
        if k not in out:
            raise ConfigError(f"expression: unknown facial action {k!r} (e.g. jawOpen, eyeBlinkLeft, "
                              f"mouthSmileLeft; {len(names)} in all, see expression_names())")
        if not 0.0 <= float(v) <= 1.0:
            raise ConfigError(f"expression.{k}: expected an intensity in [0, 1], got {v}")
        out[k] = float(v)
    return out


# posing ------------------------------------------------------------------------------------------------

def pose_from_world(world: Mapping[str, np.ndarray], root: np.ndarray | None = None) -> BodyPose:
    """A :class:`BodyPose` from per-bone *world* rotations (rest -> posed, about each bone's head).

    The whole-body rotation is ``root`` (or ``world["root"]``); every other rotation is absolute, not
    relative to it. Bones not in ``world`` inherit their parent's world rotation (they move rigidly
    with it)."""
    topo = topology()
    if root is None:
        root = world.get("root", np.eye(3))
    root = np.asarray(root, dtype=np.float64)
    g = [root] * len(topo.bone_names)
    rotations: dict[str, np.ndarray] = {}
    for i, name in enumerate(topo.bone_names):
        if i == 0:
            continue
        gp = g[int(topo.bone_parents[i])]
        if name in world:
            g[i] = np.asarray(world[name], dtype=np.float64)
            local = gp.T @ g[i]
            if not np.allclose(local, np.eye(3), atol=1e-9):
                rotations[name] = local
        else:
            g[i] = gp
    return BodyPose(rotations, root)


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)


def pose_body(shape: Mapping[str, float], pose: BodyPose | None = None,
              expression: Mapping[str, float] | None = None) -> PosedBody:
    """Pose an anny body: phenotype ``shape`` (names in :data:`PHENOTYPES`, values in [0, 1], missing
    ones 0.5), ``pose`` (default: the rest A-pose) and facial ``expression`` (names from
    :func:`expression_names`, intensities in [0, 1]). Deterministic: same inputs, same bytes."""
    import torch

    model = load_model()
    topo = topology()
    shape = check_shape(shape)
    expr = check_expression(expression)
    pose = pose or BodyPose()
    deltas = torch.eye(4, dtype=torch.float32).repeat(1, len(topo.bone_names), 1, 1)
    deltas[0, 0, :3, :3] = torch.as_tensor(pose.root, dtype=torch.float32)
    for name, rot in pose.rotations.items():
        deltas[0, topo.bone(name), :3, :3] = torch.as_tensor(np.asarray(rot), dtype=torch.float32)
    with torch.no_grad():
        out = model(pose_parameters=deltas,
                    phenotype_kwargs={k: torch.tensor([v]) for k, v in shape.items()},
                    facial_actions={k: torch.tensor([v]) for k, v in expr.items()})
    v = out["vertices"][0].numpy().astype(np.float64)
    rest = out["rest_vertices"][0].numpy().astype(np.float64)
    bones = out["bone_poses"][0].numpy().astype(np.float64)
    shift = np.array([-bones[0, 0, 3], -bones[0, 1, 3], -v[:, 2].min()])
    rest_shift = np.array([-bones[0, 0, 3], -bones[0, 1, 3], -rest[:, 2].min()])
    v += shift
    bones[:, :3, 3] += shift
    kp = topo.keypoint_weights @ v
    return PosedBody(
        vertices=v.astype(np.float32), faces=topo.faces, normals=_vertex_normals(v, topo.faces).astype(np.float32),
        rest_vertices=(rest + rest_shift).astype(np.float32), joints=bones[:, :3, 3].astype(np.float32),
        joint_names=topo.bone_names, bone_matrices=bones, keypoints=kp.astype(np.float32),
        keypoint_names=topo.keypoint_names, expression=expr, shape=shape, uvs=topo.uvs, uv_faces=topo.uv_faces,
    )


def measurements(body: PosedBody) -> dict[str, float]:
    """Rest-shape height (m), waist circumference (m), volume (m^3) and mass (kg, density 980 kg/m^3)
    from anny's anthropometry."""
    import anny
    import torch

    a = anny.Anthropometry(load_model())
    with torch.no_grad():
        m = a(torch.as_tensor(body.rest_vertices[None], dtype=torch.float32))
    return {k: round(float(m[k][0]), 4) for k in ("height", "waist_circumference", "volume", "mass")}
