"""The scene config: what may vary and within which ranges. Pure data, validated by pydantic;
unknown keys and out-of-range values are errors that name the key."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from simreal.config import StrictModel

Range = tuple[float, float]
IntRange = tuple[int, int]


def _check_range(v: tuple[float, float], name: str = "range") -> tuple[float, float]:
    if v[0] > v[1]:
        raise ValueError(f"expected [low, high] with low <= high, got [{v[0]}, {v[1]}]")
    return v


class AssetSpec(StrictModel):
    """One target object: a built-in canister, a primitive, or a mesh file."""

    kind: Literal["canister", "primitive", "mesh"] = "canister"
    shape: Literal["cube", "sphere", "cylinder", "cone", "torus"] = "cube"
    path: str | None = None
    canister: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mesh_needs_path(self) -> AssetSpec:
        if self.kind == "mesh" and not self.path:
            raise ValueError("kind 'mesh' needs 'path' (an OBJ, PLY, STL, GLB or glTF file)")
        return self


class ObjectSpec(StrictModel):
    """A category of target objects and how many of them appear."""

    category: str
    asset: AssetSpec = Field(default_factory=AssetSpec)
    count: IntRange = (1, 1)
    size: Range = (0.8, 1.2)
    tilt: Range = (0.0, 0.0)
    spread: float = Field(0.0, ge=0.0)

    @field_validator("count")
    @classmethod
    def _count(cls, v: IntRange) -> IntRange:
        if v[0] < 0:
            raise ValueError("expected non-negative counts")
        return _check_range(v)  # type: ignore[return-value]

    @field_validator("size")
    @classmethod
    def _size(cls, v: Range) -> Range:
        if v[0] <= 0:
            raise ValueError("expected positive sizes")
        return _check_range(v)

    @field_validator("tilt")
    @classmethod
    def _tilt(cls, v: Range) -> Range:
        return _check_range(v)


class TextureSpec(StrictModel):
    """Textures for primitives, meshes without their own, distractors and the ground."""

    probability: float = Field(0.5, ge=0.0, le=1.0)
    procedural: list[Literal["noise", "stripes", "checker", "solid"]] = ["noise", "stripes", "checker"]
    folder: str | None = None
    size: int = Field(128, ge=8, le=4096)


class MaterialSpec(StrictModel):
    """Principled material ranges."""

    roughness: Range = (0.2, 0.9)
    metallic: Range = (0.0, 0.3)
    textures: TextureSpec = Field(default_factory=TextureSpec)
    wear_probability: float = Field(0.3, ge=0.0, le=1.0)
    wear: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @field_validator("roughness", "metallic")
    @classmethod
    def _unit(cls, v: Range) -> Range:
        if v[0] < 0 or v[1] > 1:
            raise ValueError("expected values in [0, 1]")
        return _check_range(v)


class CameraSpec(StrictModel):
    """Camera placed uniformly by area on a sphere segment around the target (Z up)."""

    model: Literal["pinhole", "thinlens", "fisheye"] = "pinhole"
    theta: Range = (20.0, 80.0)
    phi: Range = (0.0, 360.0)
    radius: Range = (2.5, 4.0)
    fov: Range = (35.0, 50.0)
    look_at_jitter: float = Field(0.1, ge=0.0)
    roll: Range = (-10.0, 10.0)
    exposure: Range = (-0.3, 0.3)
    aperture: Range = (0.0, 0.0)
    focus_jitter: float = Field(0.1, ge=0.0)
    fisheye_fov: float = Field(180.0, gt=0.0, le=360.0)

    @field_validator("theta")
    @classmethod
    def _theta(cls, v: Range) -> Range:
        _check_range(v)
        if v[0] < 0 or v[1] > 180:
            raise ValueError("expected polar angles in [0, 180] degrees")
        return v

    @field_validator("radius")
    @classmethod
    def _radius(cls, v: Range) -> Range:
        if v[0] <= 0:
            raise ValueError("expected a positive radius")
        return _check_range(v)

    @field_validator("fov")
    @classmethod
    def _fov(cls, v: Range) -> Range:
        if v[0] <= 0 or v[1] >= 180:
            raise ValueError("expected field of view in (0, 180) degrees")
        return _check_range(v)

    @field_validator("phi", "roll", "exposure")
    @classmethod
    def _rng(cls, v: Range) -> Range:
        return _check_range(v)

    @field_validator("aperture")
    @classmethod
    def _ap(cls, v: Range) -> Range:
        if v[0] < 0:
            raise ValueError("expected a non-negative aperture radius")
        return _check_range(v)


class EnvironmentSpec(StrictModel):
    """Environment light: constant colour or an image (equirectangular or any photo)."""

    kind: Literal["constant", "image", "none"] = "constant"
    intensity: Range = (0.3, 1.0)
    folder: str | None = None

    @model_validator(mode="after")
    def _image_needs_folder(self) -> EnvironmentSpec:
        if self.kind == "image" and not self.folder:
            raise ValueError("kind 'image' needs 'folder'")
        return self


class LightsSpec(StrictModel):
    """0..N point, spot and directional lights."""

    count: IntRange = (1, 2)
    kinds: list[Literal["point", "spot", "directional"]] = ["point", "spot", "directional"]
    intensity: Range = (0.5, 2.0)
    temperature: Range = (3000.0, 8000.0)
    theta: Range = (10.0, 70.0)
    distance: Range = (3.0, 6.0)

    @field_validator("count")
    @classmethod
    def _count(cls, v: IntRange) -> IntRange:
        if v[0] < 0:
            raise ValueError("expected non-negative counts")
        return _check_range(v)  # type: ignore[return-value]

    @field_validator("temperature")
    @classmethod
    def _temp(cls, v: Range) -> Range:
        if v[0] < 1000 or v[1] > 40000:
            raise ValueError("expected colour temperatures in [1000, 40000] K")
        return _check_range(v)


class LightingSpec(StrictModel):
    environment: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    lights: LightsSpec = Field(default_factory=LightsSpec)


class BackgroundSpec(StrictModel):
    """What is behind the objects: photos, procedural patterns, a ground plane (chosen by weight)."""

    weights: dict[Literal["photo", "procedural", "ground", "none"], float] = {"procedural": 1.0}
    photo_folder: str | None = None
    photo_mode: Literal["composite", "envmap"] = "composite"

    @model_validator(mode="after")
    def _check(self) -> BackgroundSpec:
        if not self.weights or sum(self.weights.values()) <= 0 or min(self.weights.values()) < 0:
            raise ValueError("weights: expected non-negative weights with a positive sum")
        if self.weights.get("photo", 0) > 0 and not self.photo_folder:
            raise ValueError("weights.photo > 0 needs 'photo_folder'")
        return self


class DistractorSpec(StrictModel):
    """Flying primitives with random materials that partially occlude the targets."""

    count: IntRange = (0, 3)
    shapes: list[Literal["cube", "sphere", "cylinder", "cone", "torus"]] = ["cube", "sphere", "cylinder"]
    size: Range = (0.15, 0.5)
    distance: Range = (0.3, 1.0)
    segments: int = Field(24, ge=3, le=512)

    @field_validator("count")
    @classmethod
    def _count(cls, v: IntRange) -> IntRange:
        if v[0] < 0:
            raise ValueError("expected non-negative counts")
        return _check_range(v)  # type: ignore[return-value]

    @field_validator("size", "distance")
    @classmethod
    def _pos(cls, v: Range) -> Range:
        if v[0] < 0:
            raise ValueError("expected non-negative values")
        return _check_range(v)


class RenderSpec(StrictModel):
    """Integrator settings (the fidelity knobs)."""

    spp: int = Field(16, ge=1, le=65536)
    max_depth: int = Field(4, ge=1, le=64)
    variant: str = "scalar_rgb"


class AnnotationSpec(StrictModel):
    min_visibility: float = Field(0.1, ge=0.0, le=1.0)


class CropSpec(StrictModel):
    """Crop mode: object-centred crops of the projected box, padded and resized."""

    enabled: bool = False
    size: int = Field(64, ge=8, le=4096)
    padding: float = Field(0.15, ge=0.0, le=2.0)


class SceneConfig(StrictModel):
    """A whole render job."""

    name: str = "synthetic"
    seed: int = 0
    count: int = Field(100, ge=1)
    resolution: tuple[int, int] = (128, 128)
    image_format: Literal["png", "jpg"] = "png"
    tier: str = "custom"
    objects: list[ObjectSpec] = Field(default_factory=lambda: [ObjectSpec(category="canister")])
    material: MaterialSpec = Field(default_factory=MaterialSpec)
    camera: CameraSpec = Field(default_factory=CameraSpec)
    lighting: LightingSpec = Field(default_factory=LightingSpec)
    background: BackgroundSpec = Field(default_factory=BackgroundSpec)
    distractors: DistractorSpec = Field(default_factory=DistractorSpec)
    negatives: float = Field(0.0, ge=0.0, le=1.0)
    post: dict[str, Any] = Field(default_factory=dict)
    render: RenderSpec = Field(default_factory=RenderSpec)
    annotation: AnnotationSpec = Field(default_factory=AnnotationSpec)
    crop: CropSpec = Field(default_factory=CropSpec)

    @field_validator("resolution")
    @classmethod
    def _res(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 8 or v[1] < 8 or v[0] > 8192 or v[1] > 8192:
            raise ValueError("expected [width, height] between 8 and 8192 pixels")
        return v

    @field_validator("objects")
    @classmethod
    def _objs(cls, v: list[ObjectSpec]) -> list[ObjectSpec]:
        if not v:
            raise ValueError("expected at least one object")
        return v

    @property
    def category_names(self) -> list[str]:
        """Distinct categories in order of first appearance (ids 1..K)."""
        out: list[str] = []
        for o in self.objects:
            if o.category not in out:
                out.append(o.category)
        return out
