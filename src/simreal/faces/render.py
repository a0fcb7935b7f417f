"""Rendered faces as a labelled source (``simreal faces render``): anny identities (shape, age, skin
tone, hair), expressions as named mixes of anny's 52 ARKit-style facial actions with intensity
ranges, head-pose and gaze jitter, lighting, backgrounds and a webcam-like camera, rendered with
Mitsuba, then passed through the *same* detector and aligner as real video so the chips match.

anny's mesh has no texture: skin, sclera, iris, brows, lips and hair are painted as face groups
(:func:`face_groups`), found once per identity on its neutral face relative to the eye bones.
Sample ``i`` is a pure function of (seed, i); identity ``k`` of (seed, k); output is resumable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field, field_validator

from simreal.config import StrictModel
from simreal.datasets.contract import DatasetWriter
from simreal.datasets.imageio import encode_image
from simreal.faces.errors import FacesError
from simreal.runtime.io import atomic_write_bytes
from simreal.runtime.manifest import DONE, FAILED, Manifest
from simreal.runtime.seeding import sample_rng

Range = tuple[float, float]
F = TypeVar("F", bound=Any)
MANIFEST = "manifest.sqlite"
ID_STREAM = 7


class IdentityConfig(StrictModel):
    """How identities (people) are drawn."""

    age_years: Range = Field((6.0, 60.0), description="Age range in years (anny's calibrated age axis).")
    gender: Range = Field((0.0, 1.0), description="anny gender range (0 male, 1 female).")
    weight: Range = Field((0.2, 0.8), description="anny weight range.")
    muscle: Range = Field((0.2, 0.8), description="anny muscle range.")
    proportions: Range = Field((0.3, 0.7), description="anny proportions range.")
    skin_light: tuple[float, float, float] = Field((0.86, 0.68, 0.58), description="Lightest skin colour (sRGB 0-1).")
    skin_dark: tuple[float, float, float] = Field((0.30, 0.19, 0.13), description="Darkest skin colour (sRGB 0-1).")
    skin_tone: Range = Field((0.0, 1.0), description=(
        "Range of the skin tone between skin_light (0) and skin_dark (1); target persons use another range."))
    hair: float = Field(0.8, ge=0.0, le=1.0, description="Probability that an identity has (painted) hair.")


class HeadConfig(StrictModel):
    """Head pose and gaze jitter per image."""

    yaw_deg: Range = Field((-12.0, 12.0), description="Head yaw range (turn left/right), degrees.")
    pitch_deg: Range = Field((-10.0, 10.0), description="Head pitch range (nod), degrees.")
    roll_deg: Range = Field((-6.0, 6.0), description="Head roll range (tilt), degrees.")
    gaze: float = Field(0.15, ge=0.0, le=1.0, description="Largest random eyeLook* intensity (gaze jitter).")
    background_actions: float = Field(0.08, ge=0.0, le=1.0, description=(
        "Every facial action not set by the expression gets a random intensity up to this (subtle motion)."))


class LightConfig(StrictModel):
    """Lighting per image."""

    ambient: Range = Field((0.25, 0.55), description="Uniform environment radiance range.")
    key: Range = Field((0.3, 1.0), description="Key (point) light intensity range.")
    key_azimuth_deg: Range = Field((-60.0, 60.0), description="Key light direction around the face (0 = front).")
    key_elevation_deg: Range = Field((-10.0, 50.0), description="Key light elevation range.")
    warmth: Range = Field((-0.08, 0.08), description="Colour temperature tint range (+ warmer, - cooler).")


class CameraConfig(StrictModel):
    """A webcam in front of the face."""

    distance_m: Range = Field((0.35, 0.6), description="Camera distance from the eyes, metres.")
    fov_deg: Range = Field((50.0, 62.0), description="Horizontal field of view range, degrees.")
    offset_m: float = Field(0.03, ge=0.0, description="Random offset of the camera position (up/down/sideways).")
    noise: Range = Field((0.0, 0.02), description="Sensor noise standard deviation range (of full scale).")
    blur_px: Range = Field((0.0, 0.8), description="Gaussian blur range in pixels (focus, motion).")
    jpeg: tuple[int, int] = Field((60, 95), description="JPEG quality range of the frame.")


class FaceRenderConfig(StrictModel):
    """A rendered face dataset (``simreal faces render --config``)."""

    seed: int = Field(0, description="Root seed: image i and identity k are pure functions of (seed, i|k).")
    count: int = Field(300, ge=1, description="Number of frames rendered.")
    identities: int = Field(12, ge=1, description="Number of distinct people; frame i shows person i mod identities.")
    resolution: tuple[int, int] = Field((320, 240), description="Frame width and height in pixels.")
    spp: int = Field(16, ge=1, le=1024, description="Path-tracing samples per pixel.")
    expressions: dict[str, list[dict[str, Range]]] = Field(..., min_length=2, description=(
        "Class name -> one or more alternative mixes of facial actions, each action -> [low, high] intensity "
        "(e.g. smile: [{mouthSmileLeft: [0.6, 1], mouthSmileRight: [0.6, 1]}]); an empty mix is neutral."))
    identity: IdentityConfig = Field(IdentityConfig(), description="Identity distribution.")
    head: HeadConfig = Field(HeadConfig(), description="Head pose and gaze.")
    light: LightConfig = Field(LightConfig(), description="Lighting.")
    camera: CameraConfig = Field(CameraConfig(), description="Camera and sensor.")
    chip_size: Literal[112, 150] = Field(112, description="Aligned chip size in pixels, as in faces extract.")
    padding: float = Field(0.3, ge=0.0, le=1.0, description="Chip padding, as in faces extract.")
    upsample: int = Field(1, ge=0, le=3, description=(
        "Detector upsampling (the detector runs on the full frame; 1 finds faces down to ~40 px)."))
    threshold: float = Field(-0.6, ge=-2.0, le=3.0, description=(
        "Detector score threshold for rendered frames: lower than for video, since a face is known to be there "
        "(a detection counts only if the true eye midpoint falls inside its box)."))
    keep_frames: bool = Field(False, description="Also write the full rendered frames (frames/).")

    @field_validator("expressions", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (m if isinstance(m, list) else [m or {}]) for k, m in v.items()}
        return v


def keep_grad_mode(fn: F) -> F:
    """Restore torch's autograd mode after ``fn``: loading anny switches it off process-wide, which
    would silently stop any training later in the same process."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        import torch

        grad = torch.is_grad_enabled()
        try:
            return fn(*args, **kw)
        finally:
            torch.set_grad_enabled(grad)

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------- sampling
def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def sample_identity(cfg: FaceRenderConfig, k: int) -> dict[str, Any]:
    """Identity ``k``: anny phenotype, skin colour (sRGB), hair colour or None."""
    from simreal.render.people.body import anny_age

    rng = sample_rng(cfg.seed, k, stream=ID_STREAM)
    ic = cfg.identity
    eth = rng.dirichlet([0.7, 0.7, 0.7])
    shape = {"gender": _u(rng, ic.gender), "age": anny_age(_u(rng, ic.age_years)), "weight": _u(rng, ic.weight),
             "muscle": _u(rng, ic.muscle), "proportions": _u(rng, ic.proportions),
             "african": float(eth[0]), "asian": float(eth[1]), "caucasian": float(eth[2])}
    tone = _u(rng, ic.skin_tone)
    skin = (1 - tone) * np.asarray(ic.skin_light) + tone * np.asarray(ic.skin_dark)
    skin = np.clip(skin * rng.uniform(0.94, 1.06, 3), 0, 1)
    hair = None
    if rng.random() < ic.hair:
        lightness = rng.uniform(0, 1) ** 2  # mostly dark hair, sometimes brown or blond
        hair = [float(c) for c in np.array([0.05, 0.035, 0.02]) + lightness * np.array([0.5, 0.35, 0.15])]
    return {"index": k, "shape": shape, "skin": [float(c) for c in skin], "skin_tone": tone, "hair": hair,
            "hairline": _u(rng, (0.75, 1.05))}


@keep_grad_mode
def sample_frame(cfg: FaceRenderConfig, i: int, classes: list[str]) -> dict[str, Any]:
    """Everything drawn for frame ``i`` (its ``params`` record)."""
    rng = sample_rng(cfg.seed, i)
    label = classes[int(rng.integers(len(classes)))]
    mixes = cfg.expressions[label]
    mix = mixes[int(rng.integers(len(mixes)))]
    from simreal.render.people.body import expression_names

    expr = {n: _u(rng, (0.0, cfg.head.background_actions)) for n in expression_names()}
    for n in [n for n in expr if n.startswith("eyeLook")]:
        expr[n] = _u(rng, (0.0, cfg.head.gaze))
    for n in ("eyeBlinkLeft", "eyeBlinkRight", "jawOpen"):  # keep other classes' key actions clearly low
        expr[n] = min(expr[n], 0.05)
    for n, r in mix.items():
        expr[n] = _u(rng, r)
    h, lc, cc = cfg.head, cfg.light, cfg.camera
    return {
        "label": label, "identity": i % cfg.identities, "expression": {k: round(v, 4) for k, v in expr.items()},
        "head": {"yaw": _u(rng, h.yaw_deg), "pitch": _u(rng, h.pitch_deg), "roll": _u(rng, h.roll_deg)},
        "light": {"ambient": _u(rng, lc.ambient), "key": _u(rng, lc.key), "azimuth": _u(rng, lc.key_azimuth_deg),
                  "elevation": _u(rng, lc.key_elevation_deg), "warmth": _u(rng, lc.warmth)},
        "camera": {"distance": _u(rng, cc.distance_m), "fov": _u(rng, cc.fov_deg),
                   "offset": [float(x) for x in rng.uniform(-cc.offset_m, cc.offset_m, 3)],
                   "noise": _u(rng, cc.noise), "blur": _u(rng, cc.blur_px),
                   "jpeg": int(rng.integers(cc.jpeg[0], cc.jpeg[1] + 1))},
        "background": {"c0": [float(x) for x in rng.uniform(0.05, 0.9, 3)],
                       "c1": [float(x) for x in rng.uniform(0.05, 0.9, 3)], "period": _u(rng, (0.1, 0.6)),
                       "seed": int(rng.integers(2**31 - 1))},
    }


# ------------------------------------------------------------------------------------- geometry
def face_groups(body: Any, topo: Any, hair: bool, hairline: float) -> dict[str, np.ndarray]:
    """Face masks of the painted regions (sclera, iris, brows, lips, hair, skin) of a neutral body."""
    names = body.joint_names
    f, v = body.faces, body.vertices.astype(np.float64)
    cent = v[f].mean(1)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    fn /= np.linalg.norm(fn, axis=1, keepdims=True).clip(1e-12)
    dom = topo.dominant_bone
    el, er = body.joint("eye.L").astype(np.float64), body.joint("eye.R").astype(np.float64)
    iod = float(np.linalg.norm(el - er))
    eye_z, eye_y = float((el[2] + er[2]) / 2), float((el[1] + er[1]) / 2)
    head_f = topo.head_mask[f].all(1)
    eyes = np.zeros(len(f), bool)
    iris = np.zeros(len(f), bool)
    for e in ("eye.L", "eye.R"):
        ef = (dom[f] == names.index(e)).all(1)
        c = v[dom == names.index(e)].mean(0)
        d = cent - c
        d /= np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12)
        eyes |= ef
        iris |= ef & (d[:, 1] < -math.cos(math.radians(32)))  # faces looking -Y (forward)
    front = fn[:, 1] < -0.25
    x, y, z = cent[:, 0], cent[:, 1], cent[:, 2]
    brows = head_f & ~eyes & front & (z > eye_z + 0.17 * iod) & (z < eye_z + 0.40 * iod) & (np.abs(x) > 0.12 * iod) \
        & (np.minimum(np.abs(x - el[0]), np.abs(x - er[0])) < 0.5 * iod) & (y < eye_y)
    mouth_z = eye_z - 0.98 * iod
    lips = head_f & ~eyes & front & (np.abs(x) < 0.42 * iod) & (z > mouth_z - 0.28 * iod) \
        & (z < mouth_z + 0.17 * iod) & (y < eye_y - 0.2 * iod) \
        & ((x / (0.42 * iod)) ** 2 + ((z - mouth_z + 0.05 * iod) / (0.24 * iod)) ** 2 < 1.0)
    hair_m = np.zeros(len(f), bool)
    if hair:
        hair_m = head_f & ~eyes & ((z > eye_z + hairline * iod) | ((y > eye_y + 0.9 * iod) & (z > eye_z - 0.9 * iod)))
    skin = ~(eyes | brows | lips | hair_m)
    return {"skin": skin, "sclera": eyes & ~iris, "iris": iris, "brows": brows & ~hair_m, "lips": lips,
            "hair": hair_m}


def _rot(axis: str, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@functools.lru_cache(maxsize=64)
def _identity_geometry(cfg_json: str, k: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from simreal.render.people.body import pose_body, topology

    cfg = FaceRenderConfig.model_validate_json(cfg_json)
    ident = sample_identity(cfg, k)
    neutral = pose_body(ident["shape"])
    return ident, face_groups(neutral, topology(), ident["hair"] is not None, ident["hairline"])


@keep_grad_mode
def render_frame(cfg: FaceRenderConfig, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The rendered sRGB uint8 frame (H, W, 3) of one frame's params, and the true eye midpoint
    (x, y) in its pixel-index coordinates."""
    from simreal.render.backends.mitsuba import MitsubaBackend
    from simreal.render.camera import Camera, look_at
    from simreal.render.mesh import Mesh
    from simreal.render.people.body import pose_body, pose_from_world
    from simreal.render.post import gaussian_blur, jpeg_roundtrip
    from simreal.render.scene import Instance, Light, Material, SceneData
    from simreal.render.textures import make_texture

    ident, groups = _identity_geometry(cfg.model_dump_json(), params["identity"])
    hp = params["head"]
    # body frame: +Z up, facing -Y, left +X; yaw about Z, pitch about X, roll about Y
    r_head = _rot("z", hp["yaw"]) @ _rot("x", -hp["pitch"]) @ _rot("y", hp["roll"])
    body = pose_body(ident["shape"], pose_from_world({"head": r_head}), params["expression"])
    eyes = (body.joint("eye.L") + body.joint("eye.R")).astype(np.float64) / 2
    cp = params["camera"]
    origin = eyes + np.array([0.0, -cp["distance"], 0.0]) + np.asarray(cp["offset"])
    w, h = cfg.resolution
    cam = Camera(look_at(origin, eyes + np.array([0.0, 0.0, -0.02]), np.array([0.0, 0.0, 1.0])), w, h,
                 fov=cp["fov"])
    srgb = {"skin": ident["skin"], "sclera": [0.85, 0.83, 0.8], "iris": [0.12, 0.07, 0.04],
            "brows": ident["hair"] or [0.12, 0.08, 0.05], "lips": list(np.asarray(ident["skin"]) * [0.8, 0.55, 0.55]),
            "hair": ident["hair"] or ident["skin"]}
    inst = [Instance(Mesh(body.vertices, body.faces[m], body.normals),
                     Material(tuple(float(c) ** 2.2 for c in srgb[k]), roughness=0.55 if k != "sclera" else 0.2))
            for k, m in groups.items() if m.any()]
    lp = params["light"]
    az, el = math.radians(lp["azimuth"]), math.radians(lp["elevation"])
    pos = eyes + 0.8 * np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
    tint = np.array([1 + lp["warmth"], 1.0, 1 - lp["warmth"]])
    key = tuple(float(c) for c in lp["key"] * tint)
    amb = tuple(float(c) for c in lp["ambient"] * tint)
    scene = SceneData(cam, inst, lights=[Light("point", tuple(pos), tuple(eyes), key)], env_rgb=amb,
                      hide_environment=True, spp=cfg.spp)
    rgba = MitsubaBackend().render(scene)
    bg = params["background"]
    back = make_texture({"kind": "noise", "colors": [bg["c0"], bg["c1"]], "period": bg["period"], "seed": bg["seed"]},
                        (h, w)).astype(np.float32) / 255.0
    fg = np.clip(rgba[..., :3], 0, 1) ** (1 / 2.2)
    a = np.clip(rgba[..., 3:4], 0, 1)
    img = fg * a + back * (1 - a)
    img = img + np.random.default_rng(bg["seed"]).normal(0, cp["noise"], img.shape)
    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    out = gaussian_blur(out, cp["blur"])
    uv, _ = cam.project(eyes[None])
    return jpeg_roundtrip(out, cp["jpeg"]), uv[0] - 0.5


# ------------------------------------------------------------------------------------- the job
_worker: dict[str, Any] = {}


def _detector(upsample: int, threshold: float) -> Any:
    from simreal.faces.detect import DetectorConfig, FaceDetector

    if _worker.get("key") != (upsample, threshold):
        _worker["det"] = FaceDetector(DetectorConfig(upsample=upsample, detect_scale=1.0, min_size=0,
                                                     threshold=threshold))
        _worker["key"] = (upsample, threshold)
    return _worker["det"]


def render_sample(task: tuple[str, int, str, list[str]]) -> dict[str, Any]:
    """Worker: render frame ``i``, detect and align its face, write the chip; returns its record."""
    from simreal.faces.align import align_face

    cfg_json, i, out, classes = task
    cfg = FaceRenderConfig.model_validate_json(cfg_json)
    t0 = time.perf_counter()
    params = sample_frame(cfg, i, classes)
    frame, eyes = render_frame(cfg, params)
    t1 = time.perf_counter()
    root = Path(out)
    if cfg.keep_frames:
        atomic_write_bytes(root / f"frames/{i:06d}.jpg", encode_image(frame, "jpg", 95), durable=False)
    faces = [f for f in _detector(cfg.upsample, cfg.threshold).detect(frame)
             if f.box[0] <= eyes[0] <= f.box[2] and f.box[1] <= eyes[1] <= f.box[3]]
    rec: dict[str, Any] = {"index": i, "params": params, "render_s": round(t1 - t0, 3), "face": bool(faces)}
    if faces:
        face = faces[0]
        al = align_face(frame, face.landmarks, cfg.chip_size, cfg.padding)
        rel = f"images/{i:06d}.png"
        atomic_write_bytes(root / rel, encode_image(al.chip, "png"), durable=False)
        x0, y0, x1, y1 = (float(v) for v in face.box)
        rec.update(file_name=rel, box=[x0, y0, x1 - x0, y1 - y0], score=round(face.score, 4),
                   landmarks=face.landmarks.round(2).tolist(), chip_landmarks=al.landmarks.round(2).tolist())
    return rec


@dataclass
class FaceRenderSummary:
    out: Path
    frames: int
    chips: int
    missed: int
    failed: int
    resumed: int
    seconds: float
    first_error: str | None = None


@keep_grad_mode
def render_faces(cfg: FaceRenderConfig, out: str | Path, workers: int = 1, quiet: bool = False,
                 command: str = "") -> FaceRenderSummary:
    """Render ``cfg.count`` frames into the chips dataset ``out`` (resumable; same bytes for any ``workers``)."""
    from simreal.render.people.body import check_expression
    from simreal.runtime.executors import map_tasks
    from simreal.runtime.progress import close_logger, folder_logger, make_progress

    classes = list(cfg.expressions)
    for name, mixes in cfg.expressions.items():
        for mix in mixes:
            try:
                check_expression({k: r[1] for k, r in mix.items()})
            except Exception as exc:
                raise FacesError(f"expressions.{name}: {exc}") from None
    out = Path(out)
    key = hashlib.sha256(json.dumps(cfg.model_dump(mode="json", exclude={"count"}), sort_keys=True).encode())
    out.mkdir(parents=True, exist_ok=True)
    log = folder_logger(out, "faces.render", "render.log")
    t0 = time.perf_counter()
    cfg_json = cfg.model_dump_json()
    results: dict[int, dict[str, Any]] = {}
    failed, first_error = 0, None
    with Manifest(out / MANIFEST) as man:
        old = man.get_meta("config")
        if old is not None and old != key.hexdigest()[:16]:
            raise FacesError(f"{out}: holds rendered faces of another config; use a new --out")
        man.set_meta("config", key.hexdigest()[:16])
        man.ensure((i, 0) for i in range(cfg.count))
        for row in man.rows(DONE):
            if row["id"] < cfg.count:
                results[row["id"]] = row["result"]
        resumed = len(results)
        todo = [(cfg_json, i, str(out), classes) for i in range(cfg.count) if i not in results]
        with make_progress("img", disable=quiet) as prog:
            bar = prog.add_task("faces", total=len(todo))
            for task, res, err in map_tasks(render_sample, todo, "local", workers):
                i = task[1]
                if err is not None:
                    failed += 1
                    first_error = first_error or err
                    man.record(i, FAILED, error=err)
                    log.error("frame %d failed: %s", i, err)
                else:
                    man.record(i, DONE, result=res)
                    results[i] = res
                prog.advance(bar)
    cats = [{"id": j + 1, "name": c} for j, c in enumerate(classes)]
    images = []
    for i in sorted(results):
        r = results[i]
        if not r["face"]:
            continue
        p = r["params"]
        images.append({"id": len(images) + 1, "file_name": r["file_name"], "width": cfg.chip_size,
                       "height": cfg.chip_size, "domain": "synthetic", "label": classes.index(p["label"]) + 1,
                       "seed": cfg.seed, "sample_index": i, "source": f"render:{i}", "timestamp": None,
                       "track_id": f"id{p['identity']}", "box": r["box"], "score": r["score"],
                       "landmarks": r["landmarks"], "chip_landmarks": r["chip_landmarks"], "params": p})
    missed = sum(1 for r in results.values() if not r["face"])
    s = FaceRenderSummary(out, len(results), len(images), missed, failed, resumed, time.perf_counter() - t0,
                          first_error)
    provenance = {"command": command, "stage": "faces render",
                  "config": {**cfg.model_dump(mode="json"), "chip_size": cfg.chip_size, "padding": cfg.padding}}
    DatasetWriter(out, out.name, "synthetic", cats, provenance).finalize(
        images, [], {"faces": {"frames": s.frames, "chips": s.chips, "frames_without_face": missed,
                               "failed": failed}})
    log.info("done: %d frames, %d chips, %d without a detected face, %d failed in %.1fs", s.frames, s.chips,
             missed, failed, s.seconds)
    close_logger(log)
    return s
