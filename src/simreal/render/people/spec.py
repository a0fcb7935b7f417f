"""The people job config (``simreal render -c people.yaml``): characters x views of person crops for
re-identification. Pure data, validated by pydantic; a YAML with ``type: people`` selects it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from simreal.config import StrictModel
from simreal.render.people.character import CharacterSpec
from simreal.render.spec import Kelvin, NonNegRange, PositiveRange, RenderSpec, _range

Pose = Literal["standing", "walking", "sitting"]


class PeopleCameraSpec(StrictModel):
    """Cameras on a sphere segment around each person; crops framed on the projected body."""

    cameras: int = Field(6, ge=1, le=6, description="Number of camera ids (1..6, Market-1501 style); each "
                         "covers its own azimuth sector around the person.")
    height: PositiveRange = Field((1.6, 3.2), description="Camera height above the floor (m).")
    distance: PositiveRange = Field((3.0, 7.0), description="Horizontal distance to the person (m).")
    padding: float = Field(0.08, ge=0.0, le=1.0, description="Crop padding around the projected body, as a "
                           "fraction of its size.")


class PeopleBackgroundSpec(StrictModel):
    """What is behind the person, chosen per view by weight: a plain colour, a procedural room with
    textured walls and floor, a photo, or a real HDR environment map that also lights the person."""

    weights: dict[Literal["plain", "room", "photo", "envmap"], float] = Field(
        {"plain": 1.0}, description="Background kinds and their weights (envmap: an HDR environment map seen "
                                    "behind the person and lighting it, with the person's shadow on its ground).")
    photo_folder: str | None = Field(None, description="Folder of background photos ('builtin:photos' for the "
                                     "photos shipped inside installed packages).")
    hdr_folder: str = Field("builtin:hdri", description="envmap: folder of equirectangular .exr/.hdr maps, or "
                            "builtin:hdri (Debian blender-data's eight CC0 maps).")
    hdr_rotation: Annotated[tuple[float, float], _range(-360, 720, what="degrees in [-360, 720]")] = Field(
        (0.0, 360.0), description="envmap: rotation of the map about the vertical axis (degrees).")
    hdr_intensity: PositiveRange = Field(
        (0.7, 1.4), description="envmap: brightness relative to the metered exposure (incident metering: at 1, an "
                                "18 % grey card lying on the ground under the map comes out mid grey).")
    hdr_white_balance: Kelvin = Field((5500.0, 7500.0), description="envmap: the map is tinted towards a black "
                                      "body of this temperature relative to 6500 K (luminance kept).")
    hdr_shadows: bool = Field(True, description="envmap: the person's shadow and contact occlusion from the map's "
                              "light on an invisible ground plane (a shadow catcher) darken the map's ground.")
    hdr_shadow_spp: int = Field(16, ge=1, le=4096, description="envmap: samples per pixel of the two "
                                "shadow-catcher passes (half resolution).")

    @field_validator("weights")
    @classmethod
    def _w(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or sum(v.values()) <= 0 or min(v.values()) < 0:
            raise ValueError("expected non-negative weights with a positive sum")
        return v


class PeopleLightingSpec(StrictModel):
    ambient: NonNegRange = Field((0.3, 0.8), description="Constant environment radiance.")
    sun: NonNegRange = Field((1.0, 3.0), description="Directional light irradiance.")
    sun_elevation: Annotated[tuple[float, float], _range(5, 90, what="elevations in [5, 90] degrees")] = Field(
        (30.0, 75.0), description="Directional light elevation (degrees).")
    temperature: Annotated[tuple[float, float], _range(1000, 40000, what="temperatures in [1000, 40000] K")] = Field(
        (4000.0, 7000.0), description="Light colour temperature (K).")


class PeopleConfig(StrictModel):
    """A people re-identification job: ``count`` characters, ``views`` crops each."""

    type: Literal["people"] = Field("people", description="Selects this config kind.")
    name: str = Field("people", description="Dataset name.")
    seed: int = Field(0, description="Root seed: character i is drawn from (seed, i).")
    count: int = Field(20, ge=1, description="Number of characters (identities).")
    views: int = Field(10, ge=1, le=1000, description="Images per character.")
    resolution: tuple[int, int] = Field((64, 128), description="Crop [width, height] in pixels.")
    image_format: Literal["png", "jpg"] = Field("jpg", description="Image file format.")
    tier: str = Field("people", description="A label recorded in dataset.json.")
    character: CharacterSpec = Field(default_factory=CharacterSpec, description="What is drawn per character.")
    poses: dict[Pose, float] = Field({"standing": 1.0, "walking": 2.0}, description="Poses and their weights.")
    camera: PeopleCameraSpec = Field(default_factory=PeopleCameraSpec, description="Cameras.")
    background: PeopleBackgroundSpec = Field(default_factory=PeopleBackgroundSpec, description="Backgrounds.")
    lighting: PeopleLightingSpec = Field(default_factory=PeopleLightingSpec, description="Lights.")
    render: RenderSpec = Field(default_factory=lambda: RenderSpec(spp=8, max_depth=3),
                               description="Integrator settings.")

    @field_validator("resolution")
    @classmethod
    def _res(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 8 or max(v) > 4096:
            raise ValueError("expected [width, height] between 8 and 4096 pixels")
        return v

    @field_validator("poses")
    @classmethod
    def _p(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or sum(v.values()) <= 0 or min(v.values()) < 0:
            raise ValueError("expected non-negative weights with a positive sum")
        return v

    @property
    def category_names(self) -> list[str]:
        return ["person"]

    def coco_categories(self) -> list[dict]:
        """The COCO person category with its 17 keypoints and skeleton."""
        from simreal.render.people.body import COCO_KEYPOINTS, COCO_SKELETON

        return [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO_KEYPOINTS),
                 "skeleton": [list(s) for s in COCO_SKELETON]}]
