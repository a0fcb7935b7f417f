"""Characters: seeded JSON records (shape, skin, garments, hair, accessories) and the built
character that dresses any pose of its body.

A record holds everything needed to rebuild the person, so a dataset of thousands of identities is
reproducible from (root seed, character index); views draw their own poses and cameras.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from simreal.config import StrictModel
from simreal.render.people.body import PosedBody, anny_age, pose_body
from simreal.render.people.outfit import Part, Regions, dress, measure_regions
from simreal.render.people.poses import build_pose
from simreal.render.spec import UnitRange, _range
from simreal.render.textures import hsv_to_rgb, sample_texture_params

# Monk Skin Tone scale (Google, CC-BY-4.0), sRGB, lightest to darkest.
SKIN_TONES = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420")
# Everyday garment colours (sRGB): black, charcoal, greys, white, navy, denim blues, khaki, olive, brown,
# burgundy, beige, forest green, muted red, mustard.
REALISTIC = ("1c1c1e", "36454f", "6e6e6e", "a9a9a9", "f2f2f0", "1f2a44", "3b5b8c", "5b7fa6", "b9a77a", "5a5f3c",
             "5c4033", "6d1f2c", "d8cbb0", "2f4f3a", "a23b3b", "c9a13b")
HAIR_COLORS = ("14110f", "2c1e16", "4b3222", "6f4b2e", "a57a4d", "d8b677", "8d4a2b", "9a9a9a", "dcdcdc")

HairStyle = Literal["short", "bob", "long", "bun", "bald"]
Top = Literal["tshirt", "shirt", "jacket"]
Bottom = Literal["trousers", "shorts", "skirt"]
Accessory = Literal["backpack", "bag", "hat", "glasses"]


def _hex(h: str) -> list[float]:
    return [int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)]


def _weights_ok(v: dict[str, float]) -> dict[str, float]:
    if not v or sum(v.values()) <= 0 or min(v.values()) < 0:
        raise ValueError("expected non-negative weights with a positive sum")
    return v


class ShapeSpec(StrictModel):
    """How body shapes are drawn (anny phenotypes; uniform within each range)."""

    female_probability: float = Field(0.5, ge=0.0, le=1.0, description="Chance that a character is female.")
    gender_blend: float = Field(0.15, ge=0.0, le=0.5, description="Gender value drawn within this distance "
                                "of 0 (male) or 1 (female).")
    age_years: Annotated[tuple[float, float], _range(1, 100, what="ages in [1, 100] years")] = Field(
        (18.0, 75.0), description="Age range in years (mapped by anny's WHO-calibrated age axis).")
    muscle: UnitRange = Field((0.2, 0.8), description="anny muscle range.")
    weight: UnitRange = Field((0.15, 0.85), description="anny weight range.")
    height: UnitRange = Field((0.15, 0.85), description="anny height range (relative to age and gender).")
    proportions: UnitRange = Field((0.3, 0.7), description="anny proportions range.")
    ethnicity_blend: bool = Field(True, description="Draw the African/Asian/Caucasian blend from a flat "
                                  "Dirichlet (else all 1/3).")


class ClothingSpec(StrictModel):
    """Garments: which kinds (by weight), colours and textures."""

    tops: Annotated[dict[Top, float], Field(description="Top garments and their weights.")] = {
        "tshirt": 1.0, "shirt": 1.0, "jacket": 0.6}
    bottoms: Annotated[dict[Bottom, float], Field(description="Bottom garments and their weights.")] = {
        "trousers": 1.0, "shorts": 0.3, "skirt": 0.3}
    palette: Literal["realistic", "bright"] = Field("realistic", description="'realistic': everyday garment "
                                                    "colours; 'bright': saturated plain colours.")
    texture_probability: float = Field(0.3, ge=0.0, le=1.0, description="Chance that a garment is textured.")
    textures: list[Literal["stripes", "checker", "noise"]] = Field(
        ["stripes", "checker", "noise"], description="Procedural texture kinds.")
    texture_folder: str | None = Field(None, description="Folder of garment texture images (used instead of "
                                       "procedural ones when set).")
    texture_size: int = Field(64, ge=8, le=1024, description="Texture side in pixels.")

    def model_post_init(self, _: Any) -> None:
        for key in ("tops", "bottoms"):
            try:
                _weights_ok(getattr(self, key))
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None


class HairSpec(StrictModel):
    styles: Annotated[dict[HairStyle, float], Field(description="Hair styles and their weights.")] = {
        "short": 1.0, "bob": 0.6, "long": 0.6, "bun": 0.3, "bald": 0.2}


class AccessorySpec(StrictModel):
    probabilities: Annotated[dict[Accessory, float], Field(description="Chance of each accessory.")] = {
        "backpack": 0.2, "bag": 0.15, "hat": 0.1, "glasses": 0.2}


class CharacterSpec(StrictModel):
    """Everything drawn per character."""

    shape: ShapeSpec = Field(default_factory=ShapeSpec, description="Body shape distributions.")
    skin_tone: UnitRange = Field((0.0, 1.0), description="Range on the Monk skin-tone scale (0 light, 1 dark).")
    clothing: ClothingSpec = Field(default_factory=ClothingSpec, description="Garments.")
    hair: HairSpec = Field(default_factory=HairSpec, description="Hair styles.")
    accessories: AccessorySpec = Field(default_factory=AccessorySpec, description="Accessories.")


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = sorted(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _garment_color(rng: np.random.Generator, palette: str) -> list[float]:
    if palette == "bright":
        return hsv_to_rgb(float(rng.uniform(0, 1)), float(rng.uniform(0.7, 1.0)), float(rng.uniform(0.75, 1.0)))
    base = np.array(_hex(REALISTIC[int(rng.integers(len(REALISTIC)))]))
    return [float(c) for c in np.clip(base * rng.uniform(0.85, 1.15), 0, 1)]


def sample_character(rng: np.random.Generator, spec: CharacterSpec, index: int = 0) -> dict[str, Any]:
    """A JSON-ready character record drawn from ``spec``; the same number of values is drawn whatever
    is chosen, so one setting does not shift every later draw."""
    s = spec.shape
    female = bool(rng.uniform() < s.female_probability)
    gblend = float(rng.uniform(0, s.gender_blend))
    years = float(rng.uniform(*s.age_years))
    eth = rng.dirichlet([1.0, 1.0, 1.0]) if s.ethnicity_blend else np.full(3, 1 / 3)
    shape = {
        "gender": 1.0 - gblend if female else gblend, "age": anny_age(years),
        "muscle": float(rng.uniform(*s.muscle)), "weight": float(rng.uniform(*s.weight)),
        "height": float(rng.uniform(*s.height)), "proportions": float(rng.uniform(*s.proportions)),
        "african": float(eth[0]), "asian": float(eth[1]), "caucasian": float(eth[2]),
    }
    tone = float(rng.uniform(*spec.skin_tone))
    k = tone * (len(SKIN_TONES) - 1)
    lo, hi = int(np.floor(k)), int(np.ceil(k))
    rgb = (1 - (k - lo)) * np.array(_hex(SKIN_TONES[lo])) + (k - lo) * np.array(_hex(SKIN_TONES[hi]))
    c = spec.clothing
    garments = []
    for kind in (_choice(rng, dict(c.tops)), _choice(rng, dict(c.bottoms)), "shoes"):
        color = _garment_color(rng, c.palette) if kind != "shoes" else _hex(REALISTIC[int(rng.integers(0, 6))])
        textured = rng.uniform() < c.texture_probability and kind != "shoes"
        tex = sample_texture_params(rng, c.textures)
        tex["colors"] = [color, _garment_color(rng, c.palette)]
        g = {"kind": kind, "color": color, "roughness": float(rng.uniform(0.6, 0.95)),
             "fit": float(rng.uniform(0.8, 1.4)), "flare": float(rng.uniform(0.0, 0.4))}
        if textured:
            if c.texture_folder:
                g["texture"] = {"kind": "file", "index": int(rng.integers(2**31 - 1))}
            else:
                g["texture"] = tex
        garments.append(g)
    style = _choice(rng, dict(spec.hair.styles))
    hair_color = _hex(HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))])
    if years > 60 and rng.uniform() < 0.6:
        hair_color = _hex(HAIR_COLORS[-2 + int(rng.integers(2))])
    accessories = []
    for kind in sorted(spec.accessories.probabilities):
        on = rng.uniform() < spec.accessories.probabilities[kind]
        color = _garment_color(rng, c.palette)
        scale = float(rng.uniform(0.85, 1.15))
        side = "L" if rng.uniform() < 0.5 else "R"
        if on:
            if kind == "glasses":
                color = _hex(REALISTIC[int(rng.integers(0, 3))])
            accessories.append({"kind": kind, "color": color, "scale": scale, "side": side})
    return {
        "index": int(index), "sex": "female" if female else "male", "age_years": round(years, 2), "shape": shape,
        "skin": {"tone": tone, "rgb": [float(x) for x in rgb], "roughness": float(rng.uniform(0.45, 0.7))},
        "garments": garments,
        "hair": {"style": style, "color": hair_color, "thickness": float(rng.uniform(0.006, 0.018))},
        "accessories": accessories,
    }


@dataclass
class Character:
    """A character built from its record: the neutral body, its garment regions and textures."""

    record: dict[str, Any]
    neutral: PosedBody
    regions: Regions
    textures: dict[str, np.ndarray] = field(default_factory=dict)
    build_seconds: float = 0.0

    @classmethod
    def build(cls, record: dict[str, Any], texture_files: list[Any] | None = None, texture_size: int = 64
              ) -> Character:
        from simreal.render.textures import load_texture, make_texture

        t0 = time.perf_counter()
        neutral = pose_body(record["shape"])
        regions = measure_regions(neutral)
        textures = {}
        for g in record["garments"]:
            t = g.get("texture")
            if not t:
                continue
            if t.get("kind") == "file":
                files = texture_files or []
                if files:
                    textures[g["kind"]] = load_texture(files[t["index"] % len(files)], (texture_size, texture_size))
            else:
                textures[g["kind"]] = make_texture(t, (texture_size, texture_size))
        return cls(record, neutral, regions, textures, time.perf_counter() - t0)

    def dressed(self, pose: dict[str, Any], expression: dict[str, float] | None = None,
                cull_hidden: bool = False) -> tuple[PosedBody, list[Part]]:
        """The posed body and its dressed parts (body frame) for a pose record (``cull_hidden``: drop the
        skin faces that clothes and hair cover)."""
        body = pose_body(self.record["shape"], build_pose(pose), expression)
        return body, dress(self.record, body, self.neutral, self.regions, self.textures,
                           sitting=pose.get("name") == "sitting", cull_hidden=cull_hidden)
