"""The ceiling-fisheye people-scene config (``simreal render -c scene.yaml`` with ``type: people_scene``):
rendered people composited onto background photos (or procedural rooms) seen by a calibrated
equidistant fisheye camera looking straight down. Pure data, validated by pydantic."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from simreal.config import StrictModel
from simreal.render.people.character import CharacterSpec
from simreal.render.spec import IntRange, NonNegRange, PositiveRange, RenderSpec, UnitRange, _range

Upright = Literal["standing", "walking"]
Category = Literal["person", "head"]


def _weights(v: dict[str, float]) -> dict[str, float]:
    if not v or sum(v.values()) <= 0 or min(v.values()) < 0:
        raise ValueError("expected non-negative weights with a positive sum")
    return v


class FisheyeCameraSpec(StrictModel):
    """A calibrated equidistant fisheye (r = focal * theta) on the ceiling, looking straight down; image up
    is the floor plan's +y. ``focal`` and ``center`` are in the pixels of the background photos (of the
    output image for procedural rooms) and scale with them; a photo's JSON may override them."""

    focal: float | None = Field(None, gt=0, description="Pixels per radian (None: the field of view `fov` "
                                "spans the image's shorter side).")
    center: tuple[float, float] | None = Field(None, description="Optical centre [x, y] in pixels (None: the "
                                               "image centre).")
    fov: float = Field(185.0, gt=0, le=270, description="Field of view of the image circle (degrees); pixels "
                       "outside it are black.")
    height: Annotated[tuple[float, float], _range(1.0, 20.0, what="heights in [1, 20] m")] = Field(
        (2.6, 3.4), description="Camera height above the floor (m), drawn per image (a photo's JSON "
        "'camera.height' fixes it).")


class RoomSpec(StrictModel):
    """Procedural rooms (used when no photo folder is given): a pool of rooms, each rendered once per
    worker into a background plate with its desks as furniture."""

    count: int = Field(16, ge=1, le=100000, description="Number of distinct rooms (room i is a pure function "
                       "of (seed, i)).")
    width: PositiveRange = Field((7.0, 12.0), description="Room size along x (m).")
    depth: PositiveRange = Field((7.0, 12.0), description="Room size along y (m).")
    desks: IntRange = Field((3, 8), description="Desks and cabinets per room.")
    desk_height: PositiveRange = Field((0.7, 0.8), description="Desk height (m).")
    cabinet_height: PositiveRange = Field((0.9, 1.9), description="Cabinet height (m); a quarter of the "
                                          "furniture are cabinets.")
    floor_textures: list[Literal["stripes", "checker", "noise"]] = Field(
        ["checker", "noise", "stripes"], description="Procedural floor texture kinds (tiles, carpet, planks).")
    wall_textures: list[Literal["stripes", "checker", "noise"]] = Field(
        ["noise"], description="Procedural wall texture kinds.")
    brightness: UnitRange = Field((0.35, 0.85), description="Range of floor and wall colour values.")
    spp: int = Field(16, ge=1, le=4096, description="Samples per pixel of the room plate.")


class BackgroundSpec(StrictModel):
    """Background photos from a ceiling fisheye (plus an optional ``<stem>.json`` furniture file next to
    each), or procedural rooms when ``photo_folder`` is None."""

    photo_folder: str | None = Field(None, description="Folder of background photos taken by the fisheye "
                                     "camera; None: procedural rooms.")
    require_json: bool = Field(False, description="Every photo must have its furniture JSON (else a photo "
                               "without one has no furniture).")
    rooms: RoomSpec = Field(default_factory=RoomSpec, description="Procedural rooms.")


class PeoplePoolSpec(StrictModel):
    """Who appears: counts per image and a pool of identities, each with a few prepared poses."""

    standing: IntRange = Field((1, 5), description="Upright people per image (standing or walking).")
    sitting: IntRange = Field((0, 4), description="Seated people per image (each on a chair).")
    upright_poses: dict[Upright, float] = Field({"standing": 1.0, "walking": 1.0},
                                                description="Poses of upright people and their weights.")
    identities: int = Field(100, ge=1, description="Size of the identity pool; a person's identity is drawn "
                            "from it (person_id = index + 1).")
    pose_variants: int = Field(2, ge=1, le=64, description="Prepared poses per identity and pose kind. A worker "
                               "builds each (identity, pose) once (about 0.5-1 s) and caches the posed, dressed "
                               "body, so a smaller pool renders faster.")
    character: CharacterSpec = Field(default_factory=CharacterSpec, description="What is drawn per identity.")

    @field_validator("upright_poses")
    @classmethod
    def _p(cls, v: dict[str, float]) -> dict[str, float]:
        return _weights(v)


class PlacementSpec(StrictModel):
    """Where people may stand: collision-free on the floor, inside the walkable area."""

    clearance: float = Field(0.05, ge=0.0, le=2.0, description="Minimum gap between footprints, and between "
                             "a footprint and furniture (m).")
    max_angle: float = Field(72.0, gt=0, lt=90, description="Without a floor polygon: people stand where the "
                             "floor is seen within this angle from straight down (degrees).")
    attempts: int = Field(300, ge=1, le=100000, description="Random positions tried per person.")
    restarts: int = Field(4, ge=1, le=1000, description="Whole-scene placement restarts before giving up.")


class SceneLightingSpec(StrictModel):
    """Random lighting of the rendered people and their shadows: one key light (a ceiling lamp or light
    through a window) plus ambient light; the whole image then gets a random gain."""

    ambient: NonNegRange = Field((0.25, 0.6), description="Constant environment radiance.")
    key: NonNegRange = Field((1.0, 3.0), description="Key light irradiance (directional) or its equivalent at "
                             "the floor under a lamp.")
    kinds: dict[Literal["lamp", "window"], float] = Field({"lamp": 1.0, "window": 1.0},
                                                          description="Key light kinds and their weights.")
    elevation: Annotated[tuple[float, float], _range(10, 90, what="elevations in [10, 90] degrees")] = Field(
        (35.0, 75.0), description="Window light elevation (degrees).")
    temperature: Annotated[tuple[float, float], _range(1000, 40000, what="temperatures in [1000, 40000] K")] = (
        Field((3200.0, 6500.0), description="Light colour temperature (K)."))
    shadow: UnitRange = Field((0.25, 0.55), description="Darkening of the floor in the key light's shadow "
                              "(fraction of the floor's light that came from the key light).")
    contact: UnitRange = Field((0.25, 0.5), description="Darkening of the floor right under a person (soft "
                               "ambient occlusion).")
    gain: PositiveRange = Field((0.85, 1.15), description="Exposure gain of the whole image.")

    @field_validator("kinds")
    @classmethod
    def _k(cls, v: dict[str, float]) -> dict[str, float]:
        return _weights(v)


class MotionBlurSpec(StrictModel):
    probability: float = Field(0.5, ge=0.0, le=1.0, description="Chance that a person is motion-blurred.")
    length: NonNegRange = Field((0.5, 3.0), description="Blur length in pixels (walking people up to the "
                                "top, others a third of it).")


class PeopleSceneConfig(StrictModel):
    """Ceiling-fisheye people scenes: ``count`` images, each with people sitting and standing."""

    type: Literal["people_scene"] = Field("people_scene", description="Selects this config kind.")
    name: str = Field("people-scenes", description="Dataset name.")
    seed: int = Field(0, description="Root seed: image i is drawn from (seed, i).")
    count: int = Field(100, ge=1, description="Number of images.")
    resolution: tuple[int, int] = Field((512, 512), description="Output [width, height] in pixels; photos are "
                                        "resized to it (same aspect ratio required).")
    image_format: Literal["png", "jpg"] = Field("jpg", description="Image file format.")
    tier: str = Field("people_scene", description="A label recorded in dataset.json.")
    camera: FisheyeCameraSpec = Field(default_factory=FisheyeCameraSpec, description="The fisheye camera.")
    background: BackgroundSpec = Field(default_factory=BackgroundSpec, description="Backgrounds.")
    people: PeoplePoolSpec = Field(default_factory=PeoplePoolSpec, description="People.")
    placement: PlacementSpec = Field(default_factory=PlacementSpec, description="Placement.")
    lighting: SceneLightingSpec = Field(default_factory=SceneLightingSpec, description="Lights and shadows.")
    motion_blur: MotionBlurSpec = Field(default_factory=MotionBlurSpec, description="Motion blur of people.")
    post: dict[str, Any] = Field(default_factory=lambda: {k: {"p": 0.0} for k in ("blur", "lut", "vignette",
                                                                                   "grain", "jpeg")},
                                 description="Post effects on the whole image (simreal.render.post; all "
                                 "off by default).")
    categories: list[Category] = Field(["person", "head"], description="Annotation categories written: "
                                       "person (mask, box, keypoints, head point/box) and/or head (box).")
    render: RenderSpec = Field(default_factory=lambda: RenderSpec(spp=4, max_depth=3),
                               description="Integrator settings of the people render (samples per tile pixel; "
                               "an output pixel averages about supersample^2 tile pixels).")
    supersample: float = Field(1.5, ge=1.0, le=4.0, description="People are rendered through pinhole tiles "
                               "at this many samples per output pixel side, then warped into the fisheye.")

    @field_validator("resolution")
    @classmethod
    def _res(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 16 or max(v) > 4096:
            raise ValueError("expected [width, height] between 16 and 4096 pixels")
        return v

    @field_validator("categories")
    @classmethod
    def _cats(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("expected a non-empty list of distinct categories (person, head)")
        return v

    @model_validator(mode="after")
    def _counts(self) -> PeopleSceneConfig:
        if self.people.standing[1] + self.people.sitting[1] == 0:
            raise ValueError("people.standing and people.sitting: at least one person must be possible")
        return self

    @property
    def category_names(self) -> list[str]:
        return list(self.categories)

    def coco_categories(self) -> list[dict]:
        """COCO categories: person (17 keypoints and skeleton) and head, in ``categories`` order."""
        from simreal.render.people.body import COCO_KEYPOINTS, COCO_SKELETON

        out: list[dict] = []
        for i, name in enumerate(self.categories, start=1):
            cat: dict = {"id": i, "name": name, "supercategory": "person"}
            if name == "person":
                cat.update(keypoints=list(COCO_KEYPOINTS), skeleton=[list(s) for s in COCO_SKELETON])
            out.append(cat)
        return out
