"""A built scene: plain data handed to a backend (Kubric's idea: the scene is data, renderers are
views of it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simreal.render.camera import Camera
from simreal.render.mesh import Mesh


@dataclass
class Material:
    """A principled material: constant or textured base colour (sRGB uint8 texture). ``model``
    "diffuse" is a plain Lambertian of the base colour (black: a hold-out that only blocks light)."""

    base_color: tuple[float, float, float] = (0.7, 0.7, 0.7)
    texture: np.ndarray | None = None
    roughness: float = 0.5
    metallic: float = 0.0
    model: str = "principled"


@dataclass
class Instance:
    """One mesh in world space. ``label`` > 0 marks an annotated target (its instance id)."""

    mesh: Mesh
    material: Material
    label: int = 0
    category_id: int = 0
    role: str = "target"


@dataclass
class Light:
    kind: str  # point | spot | directional
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    rgb: tuple[float, float, float]
    cutoff_deg: float = 30.0


@dataclass
class SceneData:
    """Everything a backend needs to render one image and its labels."""

    camera: Camera
    instances: list[Instance]
    lights: list[Light] = field(default_factory=list)
    env_rgb: tuple[float, float, float] | None = (0.5, 0.5, 0.5)
    env_image: np.ndarray | None = None  # uint8 (LDR photo) or float32 linear radiance (HDR)
    env_scale: float = 1.0
    env_to_world: np.ndarray | None = None  # 3x3 map-to-world rotation (None: Mitsuba's default frame)
    # per-channel gains on the environment's radiance (white balance) when it is the only light: the
    # backend applies them to the rendered radiance (exact: radiance is linear in the light per channel)
    env_tint: tuple[float, float, float] | None = None
    hide_environment: bool = False
    spp: int = 16
    max_depth: int = 4
    pixel_filter: str = "gaussian"
    seed: int = 0
    exposure: float = 0.0
    window: tuple[int, int, int, int] | None = None  # render only (x0, y0, width, height) of the image
    integrator: str = "path"  # or "direct": direct light by emitter sampling only (shadow catcher)
    extra: dict[str, Any] = field(default_factory=dict)
