"""Procedural rooms for ceiling-fisheye scenes when no photos are given: a textured floor, four walls,
desks and cabinets (solid boxes, so the furniture prisms used for occlusion match what is drawn), a
ceiling lamp and ambient light. Room i is a pure function of (seed, i); it is rendered once per worker
into a background plate (through cube-face pinhole tiles, :mod:`simreal.render.fisheye_tiles`) and
then used exactly like a photo with its furniture JSON.

``simreal people rooms`` writes rooms as photos + JSON, e.g. to make a stand-in "real" photo set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simreal.render.people.floorplan import Calibration, FloorPlan, Furniture, default_calibration
from simreal.render.people.scene_spec import PeopleSceneConfig
from simreal.render.primitives import primitive
from simreal.render.scene import Instance, Light, Material, SceneData
from simreal.render.textures import make_texture, sample_texture_params


def _rect(cx: float, cy: float, w: float, d: float, yaw: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(yaw)), np.sin(np.deg2rad(yaw))
    corners = np.array([[-w / 2, -d / 2], [w / 2, -d / 2], [w / 2, d / 2], [-w / 2, d / 2]])
    return corners @ np.array([[c, s], [-s, c]]) + [cx, cy]


def sample_room(rng: np.random.Generator, cfg: PeopleSceneConfig, index: int) -> dict[str, Any]:
    """A JSON-ready room record: size, where the camera hangs, materials, furniture and lights."""
    import shapely

    spec = cfg.background.rooms
    width, depth = float(rng.uniform(*spec.width)), float(rng.uniform(*spec.depth))
    # the camera hangs over the middle half of the room
    cam_x, cam_y = float(rng.uniform(0.25, 0.75)) * width, float(rng.uniform(0.25, 0.75)) * depth
    x0, y0 = -cam_x, -cam_y
    height = float(rng.uniform(*cfg.camera.height))
    lo, hi = spec.brightness
    floor_tex = sample_texture_params(rng, spec.floor_textures)
    wall_tex = sample_texture_params(rng, spec.wall_textures)
    for tex, desat, contrast in ((floor_tex, 0.4, 0.35), (wall_tex, 0.7, 0.1)):
        # muted colours with values in the brightness range; the second colour close to the first
        base = np.asarray(tex["colors"][0], np.float64)
        base = (1 - desat) * base + desat * base.mean()
        base = base * float(rng.uniform(lo, hi)) / max(float(base.max()), 1e-3)
        other = base * (1.0 - contrast * float(rng.uniform(0.3, 1.0)))
        tex["colors"] = [[float(v) for v in np.clip(base, 0, 1)], [float(v) for v in np.clip(other, 0, 1)]]
    n = int(rng.integers(spec.desks[0], spec.desks[1] + 1))
    furniture: list[dict[str, Any]] = []
    taken: list[Any] = []
    room = shapely.box(x0 + 0.3, y0 + 0.3, x0 + width - 0.3, y0 + depth - 0.3)
    for i in range(n):
        cabinet = (i % 4) == 3
        for _ in range(50):
            if cabinet:
                w, d = float(rng.uniform(0.8, 1.6)), float(rng.uniform(0.4, 0.6))
                h = float(rng.uniform(*spec.cabinet_height))
            else:
                w, d = float(rng.uniform(1.2, 1.8)), float(rng.uniform(0.6, 0.8))
                h = float(rng.uniform(*spec.desk_height))
            yaw = float(rng.choice([0.0, 90.0]))
            cx = float(rng.uniform(x0 + 0.3 + w / 2, x0 + width - 0.3 - w / 2)) if width > w + 0.6 else x0 + width / 2
            cy = float(rng.uniform(y0 + 0.3 + d / 2, y0 + depth - 0.3 - d / 2)) if depth > d + 0.6 else y0 + depth / 2
            poly = shapely.Polygon(_rect(cx, cy, w, d, yaw))
            # keep walkways (0.9 m) between pieces and clear of the spot under the camera
            if room.contains(poly) and not any(poly.buffer(0.9).intersects(t) for t in taken) and \
                    not poly.buffer(0.6).contains(shapely.Point(0, 0)):
                taken.append(poly)
                color = [float(c) for c in rng.uniform(0.15, 0.85, 3)]
                furniture.append({"name": "cabinet" if cabinet else "desk", "height": round(h, 4),
                                  "polygon": [[round(float(a), 4), round(float(b), 4)]
                                              for a, b in _rect(cx, cy, w, d, yaw)], "color": color,
                                  "roughness": float(rng.uniform(0.3, 0.8))})
                break
    lamp = [float(rng.uniform(x0 + 0.2 * width, x0 + 0.8 * width)),
            float(rng.uniform(y0 + 0.2 * depth, y0 + 0.8 * depth)), height + 0.1]
    return {
        "index": int(index), "width": width, "depth": depth, "origin": [x0, y0], "camera_height": height,
        "wall_height": height + 0.3, "floor": floor_tex, "walls": wall_tex,
        "floor_roughness": float(rng.uniform(0.4, 0.9)), "furniture": furniture,
        "light": {"kind": "lamp", "position": lamp, "key": float(rng.uniform(*cfg.lighting.key)),
                  "ambient": float(rng.uniform(*cfg.lighting.ambient)),
                  "temperature": float(rng.uniform(*cfg.lighting.temperature))},
    }


def room_calibration(cfg: PeopleSceneConfig) -> Calibration:
    """Procedural rooms are seen at the output resolution with the configured calibration."""
    return default_calibration(tuple(cfg.resolution), cfg.camera.focal, cfg.camera.center, cfg.camera.fov)


def room_plan(room: dict[str, Any], calibration: Calibration) -> FloorPlan:
    """The room as a floor plan: its furniture prisms and its floor inside the walls."""
    x0, y0 = room["origin"]
    floor = np.array([[x0, y0], [x0 + room["width"], y0], [x0 + room["width"], y0 + room["depth"]],
                      [x0, y0 + room["depth"]]])
    furn = [Furniture(f["name"], np.asarray(f["polygon"], np.float64), float(f["height"]))
            for f in room["furniture"]]
    return FloorPlan(calibration, float(room["camera_height"]), furn, floor)


def _box(poly: np.ndarray, height: float) -> Any:
    """A solid box over a rectangle (4 corners) from the floor to ``height``."""
    a, b, _, d = poly
    ex, ey = b - a, d - a
    m = np.eye(4)
    m[:3, 0] = [ex[0], ex[1], 0.0]
    m[:3, 1] = [ey[0], ey[1], 0.0]
    m[:3, 2] = [0.0, 0.0, height]
    centre = a + (ex + ey) / 2
    m[:3, 3] = [centre[0], centre[1], height / 2]
    return primitive("cube").transformed(m)


def room_scene(room: dict[str, Any], calibration: Calibration, spp: int, seed: int) -> SceneData:
    """The room (no people) as a scene seen by its ceiling camera."""
    from simreal.render.randomize import _temperature_rgb

    x0, y0 = room["origin"]
    w, d, h = room["width"], room["depth"], room["wall_height"]
    floor_xf = np.eye(4)
    floor_xf[:3, :3] = np.diag([w, d, 1.0])
    floor_xf[:3, 3] = [x0 + w / 2, y0 + d / 2, 0.0]
    floor = primitive("plane", size=1.0).transformed(floor_xf)
    floor.uvs = floor.uvs * np.array([w / 1.5, d / 1.5], np.float32)  # 1.5 m texture tiles (bitmaps repeat)
    inst = [Instance(floor, Material((0.6, 0.6, 0.6), make_texture(room["floor"], (128, 128)),
                                     room["floor_roughness"]), 0, 0, "ground")]
    wall_tex = make_texture(room["walls"], (64, 64))
    stand = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # plane normal +z -> -y, plane v -> +z
    for cx, cy, length, yaw in ((x0 + w / 2, y0 + d, w, 0.0), (x0 + w / 2, y0, w, 180.0),
                                (x0, y0 + d / 2, d, 90.0), (x0 + w, y0 + d / 2, d, 270.0)):
        c, s = np.cos(np.deg2rad(yaw)), np.sin(np.deg2rad(yaw))
        xf = np.eye(4)
        xf[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ stand @ np.diag([length, h, 1.0])
        xf[:3, 3] = [cx, cy, h / 2]
        wall = primitive("plane", size=1.0).transformed(xf)
        wall.uvs = wall.uvs * np.array([length / 1.5, h / 1.5], np.float32)
        inst.append(Instance(wall, Material((0.7, 0.7, 0.7), wall_tex, 0.9), 0, 0, "ground"))
    for f in room["furniture"]:
        inst.append(Instance(_box(np.asarray(f["polygon"]), f["height"]), Material(tuple(f["color"]), None,
                                                                                   f["roughness"]), 0, 0, "ground"))
    light = room["light"]
    rgb = np.asarray(_temperature_rgb(light["temperature"]))
    lamp_h = light["position"][2]
    lights = [Light("point", tuple(light["position"]), (0.0, 0.0, 0.0),
                    tuple(float(c) for c in rgb * light["key"] * lamp_h ** 2))]
    cam = calibration.camera(room["camera_height"])
    return SceneData(cam, inst, lights, env_rgb=tuple(float(c) * light["ambient"] for c in rgb), spp=spp,
                     max_depth=2, pixel_filter="box", seed=seed)


def render_room(backend: Any, room: dict[str, Any], calibration: Calibration, spp: int, seed: int
                ) -> np.ndarray:
    """The room's background plate: sRGB uint8 (H, W, 3) as the ceiling fisheye sees it."""
    from simreal.render.build import linear_to_srgb
    from simreal.render.fisheye_tiles import cube_tiles, render_tile, warp

    scene = room_scene(room, calibration, spp, seed)
    mscene = backend._scene(scene, list(range(len(scene.instances))), True)
    cam = scene.camera
    # a face pixel is no coarser than a fisheye pixel at the image centre (the 2x2 warp smooths the rest)
    face = int(np.clip(np.ceil(1.25 * 2.0 * cam.focal_px * np.tan(np.pi / 4)), 16, 2048))
    tiles = cube_tiles(cam, face)
    images = [render_tile(backend, mscene, t, spp, seed + k, "box") for k, t in enumerate(tiles)]
    rgba = warp(cam, (0, 0, cam.width, cam.height), tiles, images, sub=2)
    return (linear_to_srgb(rgba[..., :3]) * 255.0 + 0.5).astype(np.uint8)


def room_json(room: dict[str, Any], calibration: Calibration, image_name: str) -> dict[str, Any]:
    """The furniture JSON of a room exported as a photo (the format :func:`read_floor_plan` reads)."""
    x0, y0 = room["origin"]
    w, d = room["width"], room["depth"]
    r4 = lambda v: round(float(v), 4)  # noqa: E731
    return {"image": image_name, "size": list(calibration.size),
            "camera": {"height": r4(room["camera_height"]), "focal": r4(calibration.focal),
                       "center": [r4(c) for c in calibration.center], "fov": calibration.fov},
            "floor": {"polygon": [[r4(x0), r4(y0)], [r4(x0 + w), r4(y0)], [r4(x0 + w), r4(y0 + d)],
                                  [r4(x0), r4(y0 + d)]]},
            "furniture": [{"name": f["name"], "height": f["height"], "polygon": f["polygon"]}
                          for f in room["furniture"]]}


def export_rooms(cfg: PeopleSceneConfig, out: str | Path, quiet: bool = False) -> int:
    """Render ``background.rooms.count`` rooms of ``cfg`` as photos (``room_0000.png``) with their furniture
    JSON next to them, e.g. a stand-in photo set for ``background.photo_folder``. Existing files are kept
    (re-running resumes); each file is written atomically."""
    from simreal.datasets.imageio import encode_image
    from simreal.render.people.scenes import STREAM_ROOM, backend
    from simreal.runtime.io import atomic_write_bytes, atomic_write_json
    from simreal.runtime.progress import make_progress
    from simreal.runtime.seeding import sample_rng, sample_seed

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    calib = room_calibration(cfg)
    be = backend(cfg.render.variant)
    n = cfg.background.rooms.count
    written = 0
    with make_progress("room", disable=quiet) as prog:
        task = prog.add_task(f"rooms {out.name}", total=n)
        for i in range(n):
            name = f"room_{i:04d}.png"
            if not ((out / name).is_file() and (out / name).with_suffix(".json").is_file()):
                room = sample_room(sample_rng(cfg.seed, i, STREAM_ROOM), cfg, i)
                img = render_room(be, room, calib, cfg.background.rooms.spp, sample_seed(cfg.seed, i, STREAM_ROOM))
                atomic_write_bytes(out / name, encode_image(img, "png"))
                atomic_write_json((out / name).with_suffix(".json"), room_json(room, calib, name))
                written += 1
            prog.advance(task)
    return written
