"""The scene config: what may vary and within which ranges. Pure data, validated by pydantic;
unknown keys and out-of-range values are errors that name the key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from simreal.config import StrictModel


def _range(lo: float | None = None, hi: float | None = None, strict_lo: bool = False, strict_hi: bool = False,
           what: str = "values"):  # noqa: ANN202 - returns a validator
    """A validator for ``[low, high]``: ordered, and within bounds (``what`` names them in errors)."""

    def check(v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError(f"expected [low, high] with low <= high, got [{v[0]}, {v[1]}]")
        if lo is not None and (v[0] <= lo if strict_lo else v[0] < lo):
            raise ValueError(f"expected {what}")
        if hi is not None and (v[1] >= hi if strict_hi else v[1] > hi):
            raise ValueError(f"expected {what}")
        return v

    return AfterValidator(check)


Range = Annotated[tuple[float, float], _range()]
IntRange = Annotated[tuple[int, int], _range(0, what="non-negative counts")]
PositiveRange = Annotated[tuple[float, float], _range(0, strict_lo=True, what="positive values")]
NonNegRange = Annotated[tuple[float, float], _range(0, what="non-negative values")]
UnitRange = Annotated[tuple[float, float], _range(0, 1, what="values in [0, 1]")]
Kelvin = Annotated[tuple[float, float], _range(1000, 40000, what="colour temperatures in [1000, 40000] K")]


class AssetSpec(StrictModel):
    """One target object: a built-in canister, a primitive, or a mesh file."""

    kind: Literal["canister", "primitive", "mesh"] = Field(
        "canister", description="canister: the procedural canister (docs/assets.md); primitive: a textured shape; "
                                "mesh: a mesh file, normalised to unit size")
    shape: Literal["cube", "sphere", "cylinder", "cone", "torus"] = Field("cube", description="primitive: which shape")
    path: str | None = Field(None, description="mesh: an OBJ, PLY, STL, GLB or glTF file (relative to the working "
                                               "folder)")
    canister: dict[str, Any] = Field(default_factory=dict, description="canister: overrides of the canister spec "
                                                                        "(body, cap, bands, label; docs/assets.md)")

    @model_validator(mode="after")
    def _mesh_needs_path(self) -> AssetSpec:
        if self.kind == "mesh" and not self.path:
            raise ValueError("kind 'mesh' needs 'path' (an OBJ, PLY, STL, GLB or glTF file)")
        return self


class ObjectSpec(StrictModel):
    """A category of target objects and how many of them appear."""

    category: str = Field(description="class name written to the COCO categories (ids 1..K in order of first "
                                      "appearance)")
    asset: AssetSpec = Field(default_factory=AssetSpec, description="what the object is")
    count: IntRange = Field((1, 1), description="instances per image, [low, high] inclusive")
    size: PositiveRange = Field((0.8, 1.2), description="largest extent in scene units, drawn per instance")
    tilt: Range = Field((0.0, 0.0), description="tilt from upright in degrees, drawn per instance (the spin about "
                                                "the vertical is uniform)")
    spread: float = Field(0.0, ge=0.0, description="instances after the first are offset in x and y by up to this "
                                                   "many scene units")


class TextureSpec(StrictModel):
    """Textures for primitives, meshes without their own, distractors and the ground."""

    probability: float = Field(0.5, ge=0.0, le=1.0, description="chance that a surface gets a texture instead of a "
                                                                "plain colour")
    procedural: list[Literal["noise", "stripes", "checker", "solid"]] = Field(
        ["noise", "stripes", "checker"], description="procedural texture kinds to draw from")
    folder: str | None = Field(None, description="folder of texture images drawn from besides the procedural kinds")
    size: int = Field(128, ge=8, le=4096, description="side of the generated texture images, pixels")


class MaterialSpec(StrictModel):
    """Principled material ranges."""

    roughness: UnitRange = Field((0.2, 0.9), description="principled BSDF roughness range")
    metallic: UnitRange = Field((0.0, 0.3), description="principled BSDF metallic range")
    saturation: UnitRange = Field((0.2, 0.9), description="HSV saturation range of base colours (and of the "
                                                          "procedural textures' colours)")
    value: UnitRange = Field((0.2, 0.95), description="HSV value range of base colours")
    textures: TextureSpec = Field(default_factory=TextureSpec, description="textures of primitives, meshes without "
                                                                           "their own, distractors and the ground")
    wear_probability: float = Field(0.3, ge=0.0, le=1.0, description="chance that an object gets dust, grime and "
                                                                     "scratch overlays")
    wear: dict[str, tuple[float, float]] = Field(default_factory=dict, description="ranges of the wear overlays by "
                                                                                   "name: dust, grime, scratches")


class CameraSpec(StrictModel):
    """Camera placed uniformly by area on a sphere segment around the target (Z up)."""

    model: Literal["pinhole", "thinlens", "fisheye"] = Field(
        "pinhole", description="pinhole; thinlens (depth of field); fisheye (equidistant, r = f theta)")
    theta: Annotated[tuple[float, float], _range(0, 180, what="polar angles in [0, 180] degrees")] = Field(
        (20.0, 80.0), description="polar angle of the camera from the zenith, degrees")
    phi: Range = Field((0.0, 360.0), description="azimuth of the camera, degrees")
    radius: Annotated[tuple[float, float], _range(0, strict_lo=True, what="a positive radius")] = Field(
        (2.5, 4.0), description="distance from the look-at point, scene units")
    fov: Annotated[tuple[float, float], _range(0, 180, True, True, "field of view in (0, 180) degrees")] = Field(
        (35.0, 50.0), description="pinhole/thinlens horizontal field of view, degrees")
    look_at_jitter: float = Field(0.1, ge=0.0, description="std of the look-at point's offset from the target, in "
                                                            "object radii")
    roll: Range = Field((-10.0, 10.0), description="rotation about the viewing axis, degrees")
    exposure: Range = Field((-0.3, 0.3), description="exposure offset in EV applied to the linear image before "
                                                     "tone mapping")
    aperture: Annotated[tuple[float, float], _range(0, what="a non-negative aperture radius")] = Field(
        (0.0, 0.0), description="thinlens: lens radius, scene units")
    focus_jitter: float = Field(0.1, ge=0.0, description="thinlens: focus distance is the look-at distance times "
                                                          "1 + U(-j, j)")
    fisheye_fov: float = Field(180.0, gt=0.0, le=360.0, description="fisheye: field of view across the image "
                                                                     "width, degrees")



class EnvironmentSpec(StrictModel):
    """Environment light: a constant colour, an image (LDR photo as an environment map) or real HDR
    environment maps (image-based lighting, see ``simreal.render.lighting``)."""

    kind: Literal["constant", "image", "hdr", "none"] = Field(
        "constant", description="constant colour; image: photos as (LDR) environment maps; hdr: real HDR "
                                "environment maps (.exr/.hdr, image-based lighting); none")
    intensity: NonNegRange = Field((0.3, 1.0), description="radiance multiplier (hdr: of the map's own values)")
    folder: str | None = Field(None, description="image: folder of photos; hdr: folder of equirectangular "
                                                 ".exr/.hdr maps, or builtin:hdri (Debian's blender-data maps)")
    rotation: Annotated[tuple[float, float], _range(-360, 720, what="degrees in [-360, 720]")] = Field(
        (0.0, 360.0), description="hdr: rotation of the map about the vertical axis, degrees")
    white_balance: Kelvin = Field((5500.0, 7500.0), description="hdr: the map is tinted towards a black body of "
                                                                 "this temperature relative to 6500 K (luminance kept)")

    @model_validator(mode="after")
    def _image_needs_folder(self) -> EnvironmentSpec:
        if self.kind == "image" and not self.folder:
            raise ValueError("kind 'image' needs 'folder'")
        if self.kind == "hdr" and not self.folder:
            self.folder = "builtin:hdri"
        return self


class LightsSpec(StrictModel):
    """0..N point, spot and directional lights."""

    count: IntRange = Field((1, 2), description="lights per image, [low, high] inclusive")
    kinds: list[Literal["point", "spot", "directional"]] = Field(
        ["point", "spot", "directional"], description="light kinds to draw from")
    intensity: NonNegRange = Field((0.5, 2.0), description="irradiance at the target")
    temperature: Kelvin = Field(
        (3000.0, 8000.0), description="black-body colour temperature, K")
    theta: Annotated[tuple[float, float], _range(0, 180, what="polar angles in [0, 180] degrees")] = Field(
        (10.0, 70.0), description="polar angle of the light from the zenith, degrees")
    distance: PositiveRange = Field((3.0, 6.0), description="point/spot: distance from the target, scene units")


class LightingSpec(StrictModel):
    """Environment light plus discrete lights."""

    environment: EnvironmentSpec = Field(default_factory=EnvironmentSpec, description="light from every direction")
    lights: LightsSpec = Field(default_factory=LightsSpec, description="point, spot and directional lights")


class GroundSpec(StrictModel):
    """The ground plane z = 0 under grounded objects, and how the camera looks at it."""

    shadow_catcher: bool = Field(True, description="photo and environment backgrounds receive the objects' "
                                                   "shadows and contact occlusion through an invisible ground plane")
    catcher_spp: int = Field(16, ge=1, le=4096, description="samples per pixel of the two shadow-catcher passes")
    catcher_scale: int = Field(2, ge=1, le=8, description="the shadow-catcher passes run at 1/scale of the "
                                                         "resolution (shadows are smooth; 4x fewer rays at 2)")
    horizon: Annotated[tuple[float, float], _range(-2.0, 3.0, what="row fractions in [-2, 3]")] = Field(
        (0.2, 0.55), description="horizon row (fraction of the image height from the top; outside [0, 1]: "
                                 "off-frame) when the photo has no perspective JSON")
    camera_height: PositiveRange | None = Field(
        None, description="camera height above the ground in metres when the photo has no JSON; "
                          "null: follows from the camera distance and where the object appears")
    unit_m: float = Field(0.13, gt=0.0, description="metres per scene unit (a size-1 object is this tall)")
    object_rows: UnitRange = Field((0.35, 0.8), description="image rows (fractions) where the object may appear")


class BackgroundSpec(StrictModel):
    """What is behind the objects (chosen by weight): photos, the environment map itself
    (``environment``), procedural patterns, a textured ground plane, nothing."""

    weights: dict[Literal["photo", "procedural", "ground", "none", "environment"], float] = Field(
        {"procedural": 1.0}, description="background kinds by weight: photo, environment (the environment map "
                                         "itself), procedural pattern, textured ground plane, none")
    photo_folder: str | None = Field(None, description="folder of photos (optional <photo>.json perspective "
                                                       "beside each), builtin:photos or builtin:ground-photos")
    photo_mode: Literal["composite", "envmap"] = Field(
        "composite", description="composite: the photo behind the objects; envmap: the photo as environment map")
    photo_scale: Annotated[tuple[float, float], _range(0, 1, True, False, "values in (0, 1]")] = Field(
        (0.5, 1.0), description="side of the photo crop shown, as a fraction of the largest crop of the image's "
                                "aspect (1: the whole photo; smaller crops are enlarged, hence softer)")
    photo_resample: Literal["bilinear", "lanczos"] = Field(
        "bilinear", description="filter resizing the photo crop to the image: lanczos keeps a downscaled photo as "
                                "sharp as a camera's own downscaling")
    ground: GroundSpec = Field(default_factory=GroundSpec, description="shadow catcher and photo perspective")

    @model_validator(mode="after")
    def _check(self) -> BackgroundSpec:
        if not self.weights or sum(self.weights.values()) <= 0 or min(self.weights.values()) < 0:
            raise ValueError("weights: expected non-negative weights with a positive sum")
        if self.weights.get("photo", 0) > 0 and not self.photo_folder:
            raise ValueError("weights.photo > 0 needs 'photo_folder'")
        return self


class PlacementSpec(StrictModel):
    """How targets meet the ground z = 0 (chosen per object by weight)."""

    weights: dict[Literal["floating", "upright", "lying", "leaning", "supported"], float] = Field(
        {"floating": 1.0}, description="floating (as sampled, no ground), upright or lying on the ground, "
                                       "leaning against a box, standing or lying on a box")
    lean: Annotated[tuple[float, float], _range(0, 80, what="degrees from vertical in [0, 80]")] = Field(
        (10.0, 35.0), description="leaning: tilt from vertical, degrees")
    support_height: PositiveRange = Field((0.2, 1.0), description="supported: box height in object sizes")

    @model_validator(mode="after")
    def _check(self) -> PlacementSpec:
        if not self.weights or sum(self.weights.values()) <= 0 or min(self.weights.values()) < 0:
            raise ValueError("weights: expected non-negative weights with a positive sum")
        return self

    @property
    def grounded(self) -> bool:
        """Whether any object may touch the ground."""
        return any(w > 0 for k, w in self.weights.items() if k != "floating")


class FilmSpec(StrictModel):
    """From linear radiance to display values (``simreal.render.film``)."""

    tone: Literal["clip", "filmic"] = Field("clip", description="clip: linear values clipped at 1 (old tiers); "
                                                               "filmic: ACES-fit tone curve")
    auto_exposure: bool = Field(False, description="meter the frame's log-average luminance to 'key'")
    key: Annotated[tuple[float, float], _range(0, 1, True, False, "values in (0, 1]")] = Field(
        (0.12, 0.22), description="scene-linear mid grey the metered frame is exposed to (photo backgrounds: the "
                                  "photo's own brightness is the key instead)")
    match_noise: bool = Field(False, description="give the rendered objects the noise measured in the background "
                                                 "photo (per channel, Immerkaer's estimator), as a compositor "
                                                 "matches grain: a denoised render is otherwise cleaner than the "
                                                 "photo around it")
    post_scope: Literal["frame", "rendered"] = Field(
        "frame", description="where the camera effects (post) apply when the background is a capture (a photo or "
                             "the environment map): frame: the whole image (old tiers); rendered: only where the "
                             "render drew objects or shadows (blur, grain, JPEG; no LUT or vignette; the objects "
                             "softened as much as the enlarged map): the capture went through its own camera once")


class DistractorSpec(StrictModel):
    """Flying primitives with random materials that partially occlude the targets."""

    count: IntRange = Field((0, 3), description="distractors per image, [low, high] inclusive")
    shapes: list[Literal["cube", "sphere", "cylinder", "cone", "torus"]] = Field(
        ["cube", "sphere", "cylinder"], description="primitive shapes to draw from")
    size: NonNegRange = Field((0.15, 0.5), description="largest extent, scene units")
    distance: NonNegRange = Field((0.3, 1.0), description="lateral offset from the camera-target line, in object "
                                                          "radii")
    segments: int = Field(24, ge=3, le=512, description="tessellation of round primitives")


class RenderSpec(StrictModel):
    """Integrator settings (the fidelity knobs)."""

    spp: int = Field(16, ge=1, le=65536, description="path-tracing samples per pixel")
    max_depth: int = Field(4, ge=1, le=64, description="longest light path, bounces")
    filter: Literal["gaussian", "box"] = Field("gaussian", description="pixel reconstruction filter (box is about "
                                                                      "30 % faster in scalar_rgb)")
    variant: Literal["scalar_rgb", "llvm_ad_rgb", "cuda_ad_rgb"] = Field(
        "scalar_rgb", description="Mitsuba variant: scalar_rgb (CPU reference), llvm_ad_rgb (JIT-compiled, "
        "vectorised CPU) or cuda_ad_rgb (GPU); labels are one ray per pixel centre in every variant, image bytes "
        "differ between variants (docs/devices.md)")
    denoise: bool = Field(False, description="Open Image Denoise on the beauty pass (needs the 'denoise' extra; "
                                             "pair it with filter: box, see simreal.render.denoise)")


class AnnotationSpec(StrictModel):
    """Which annotations count."""

    min_visibility: float = Field(0.1, ge=0.0, le=1.0, description="visible / amodal area below which an "
                                                                   "annotation gets simreal.ignore = 1")


class CropSpec(StrictModel):
    """Crop mode: object-centred crops of the projected box, padded and resized."""

    enabled: bool = Field(False, description="write crops instead of whole images (also --crop)")
    size: int = Field(64, ge=8, le=4096, description="side of the square crops, pixels")
    padding: float = Field(0.15, ge=0.0, le=2.0, description="margin around the amodal box, as a fraction of its "
                                                             "larger side")


class SceneConfig(StrictModel):
    """A whole render job."""

    name: str = Field("synthetic", description="dataset name (dataset.json)")
    seed: int = Field(0, description="root seed: image i is a pure function of (seed, i)")
    count: int = Field(100, ge=1, description="number of images (--count overrides)")
    resolution: tuple[int, int] = Field((128, 128), description="[width, height] in pixels, 8..8192")
    image_format: Literal["png", "jpg"] = Field("png", description="file format of the images")
    tier: str = Field("custom", description="fidelity tier recorded in the provenance (low, high, ...)")
    objects: list[ObjectSpec] = Field(default_factory=lambda: [ObjectSpec(category="canister")],
                                      description="target object categories (at least one)")
    material: MaterialSpec = Field(default_factory=MaterialSpec, description="material ranges")
    camera: CameraSpec = Field(default_factory=CameraSpec, description="camera model and placement")
    lighting: LightingSpec = Field(default_factory=LightingSpec, description="environment and lights")
    background: BackgroundSpec = Field(default_factory=BackgroundSpec, description="what is behind the objects")
    distractors: DistractorSpec = Field(default_factory=DistractorSpec, description="occluding clutter")
    placement: PlacementSpec = Field(default_factory=PlacementSpec, description="objects on the ground or floating")
    film: FilmSpec = Field(default_factory=FilmSpec, description="exposure and tone curve")
    negatives: float = Field(0.0, ge=0.0, le=1.0, description="fraction of images without targets (label 0)")
    post: dict[str, Any] = Field(default_factory=dict, description="post-effects: lut, blur, vignette, grain, jpeg, "
                                                                  "each with a probability p and ranges; lut_folder "
                                                                  "(docs/assets.md); empty: the defaults")
    render: RenderSpec = Field(default_factory=RenderSpec, description="integrator settings")
    annotation: AnnotationSpec = Field(default_factory=AnnotationSpec, description="annotation thresholds")
    crop: CropSpec = Field(default_factory=CropSpec, description="object-centred crop mode")

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
    def photographic(self) -> bool:
        """Whether the photographic pipeline (auto-exposure, tone curve, compositing) finishes images."""
        return self.film.tone != "clip" or self.film.auto_exposure

    @property
    def category_names(self) -> list[str]:
        """Distinct categories in order of first appearance (ids 1..K)."""
        out: list[str] = []
        for o in self.objects:
            if o.category not in out:
                out.append(o.category)
        return out
