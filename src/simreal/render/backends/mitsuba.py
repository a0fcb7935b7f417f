"""Mitsuba 3 backend: path-traced RGB(A) and exact per-pixel-centre instance labels.

Labels come from a separate AOV pass that traces exactly one ray through each pixel centre
(stratified sampler without jitter, 1 sample, box filter) and reads the hit shape's index; Mitsuba's
shape-index AOV is meaningless where a pixel is partly covered, so it is never averaged here. This holds
in every variant (:data:`VARIANTS`): labels are exact geometry, the same in scalar, LLVM and CUDA.

Determinism per variant (docs/devices.md): scalar_rgb and llvm_ad_rgb render with one thread per worker,
so a sample's bytes do not depend on the worker count; images of different variants differ (other
random-number streams and float order), so a dataset's config hash includes the variant; cuda_ad_rgb
accumulates the film with GPU atomics, so its images may differ in the last bits between runs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from simreal.errors import ConfigError
from simreal.render.camera import Camera
from simreal.render.scene import Instance, Material, SceneData

VARIANTS = ("scalar_rgb", "llvm_ad_rgb", "cuda_ad_rgb")
"""Mitsuba variants simreal renders with: the CPU reference (scalar), the JIT-compiled CPU variant (LLVM, vectorised)
and the GPU variant (CUDA/OptiX)."""

MIN_LLVM = (17,)
"""Oldest libLLVM accepted for llvm_ad_rgb: 15 and 16 abort on Mitsuba 3.9's kernels (x86 instruction selection
of ``fminimum``); 19 is tested."""

_state: dict[str, Any] = {"variant": None, "registered": set(), "aov": {}}


def check_variant(variant: str, where: str = "render.variant") -> None:
    """ConfigError naming ``where`` unless ``variant`` can render on this machine (the JIT variants need their
    Dr.Jit backend: LLVM for llvm_ad_rgb, a CUDA GPU and driver for cuda_ad_rgb)."""
    if variant not in VARIANTS:
        raise ConfigError(f"{where}: {variant!r} is not a render variant (expected one of {', '.join(VARIANTS)})")
    if variant == "scalar_rgb":
        return
    import drjit as dr

    backend = dr.JitBackend.CUDA if variant.startswith("cuda") else dr.JitBackend.LLVM
    if not dr.has_backend(backend):
        need = "a CUDA GPU and driver" if variant.startswith("cuda") else "the LLVM library (libLLVM)"
        raise ConfigError(f"{where}: {variant} needs {need}, which this machine lacks; use "
                          f"{'llvm_ad_rgb or ' if variant.startswith('cuda') else ''}scalar_rgb")
    if backend == dr.JitBackend.LLVM:
        version = tuple(dr.detail.llvm_version())
        if version < MIN_LLVM:
            found = ".".join(map(str, version))
            raise ConfigError(f"{where}: llvm_ad_rgb: Dr.Jit loaded libLLVM {found}, whose code generator aborts on "
                              f"Mitsuba's kernels ('Cannot select: fminimum'); install libLLVM >= {MIN_LLVM[0]} "
                              "(Debian: apt-get install libllvm19) or point DRJIT_LIBLLVM_PATH at one")


def ensure_variant(variant: str = "scalar_rgb", threads: int | None = 1) -> Any:
    """Import Mitsuba, make ``variant`` the active one (every backend call re-selects its own, so backends of
    several variants can share a process), register the fisheye sensor for it once."""
    import drjit as dr
    import mitsuba as mi

    if _state["variant"] != variant:
        if variant not in mi.variants():
            raise ConfigError(f"render.variant: '{variant}' is not available (have: {', '.join(mi.variants())})")
        mi.set_variant(variant)
        if variant not in _state["registered"]:
            from simreal.render.backends.fisheye import register_fisheye

            register_fisheye()
            _state["registered"].add(variant)
        _state["variant"] = variant
    if threads is not None:
        dr.set_thread_count(threads)
    return mi


class MitsubaBackend:
    """Renders a :class:`SceneData`; accumulates the seconds spent inside ``mi.render`` and inside
    Mitsuba's scene construction (``mi.load_dict``: plugins and acceleration structure)."""

    def __init__(self, variant: str = "scalar_rgb", threads: int | None = 1) -> None:
        self.variant, self.threads = variant, threads
        self.mi = ensure_variant(variant, threads)
        self.render_seconds = 0.0
        self.scene_seconds = 0.0

    def _select(self) -> None:
        if _state["variant"] != self.variant:
            ensure_variant(self.variant, self.threads)

    # building -------------------------------------------------------------
    def _bsdf(self, m: Material) -> Any:
        mi = self.mi
        if m.texture is not None:
            tex = np.ascontiguousarray(m.texture.astype(np.float32) / 255.0)
            base: dict[str, Any] = {"type": "bitmap", "bitmap": mi.Bitmap(tex), "raw": False}
        else:
            base = {"type": "rgb", "value": [float(c) for c in m.base_color]}
        if m.model == "diffuse":
            return mi.load_dict({"type": "diffuse", "reflectance": base})
        return mi.load_dict({
            "type": "principled", "base_color": base,
            "roughness": float(m.roughness), "metallic": float(m.metallic),
        })

    def _mesh(self, name: str, inst: Instance, with_bsdf: bool) -> Any:
        mi = self.mi
        mesh = inst.mesh
        props = mi.Properties()
        if with_bsdf:
            props["bsdf"] = self._bsdf(inst.material)
        has_n = mesh.normals is not None
        has_uv = mesh.uvs is not None
        m = mi.Mesh(name, len(mesh.vertices), len(mesh.faces), props=props,
                    has_vertex_normals=has_n, has_vertex_texcoords=has_uv)
        p = mi.traverse(m)
        p["vertex_positions"] = mesh.vertices.ravel()
        p["faces"] = mesh.faces.astype(np.uint32).ravel()
        if has_n:
            p["vertex_normals"] = mesh.normals.ravel()
        if has_uv:
            uv = mesh.uvs.copy()
            uv[:, 1] = 1.0 - uv[:, 1]  # image row 0 is the top of the texture
            p["vertex_texcoords"] = uv.ravel()
        p.update()
        return m

    def _sensor(self, cam: Camera, labels: bool, spp: int, pixel_filter: str = "gaussian",
                window: tuple[int, int, int, int] | None = None) -> dict[str, Any]:
        mi = self.mi
        film: dict[str, Any] = {
            "type": "hdrfilm", "width": cam.width, "height": cam.height,
            "pixel_format": "rgb" if labels else "rgba",
        }
        if window is not None:
            film.update(crop_offset_x=int(window[0]), crop_offset_y=int(window[1]), crop_width=int(window[2]),
                        crop_height=int(window[3]))
        if labels:
            film["rfilter"] = {"type": "box"}
            sampler = {"type": "stratified", "sample_count": 1, "jitter": False}
        else:
            film["rfilter"] = {"type": pixel_filter}
            sampler = {"type": "independent", "sample_count": int(spp)}
        tw = mi.ScalarTransform4f(cam.to_world.tolist())
        if cam.model == "fisheye":
            sensor: dict[str, Any] = {"type": "simreal_fisheye", "fov": float(cam.fov)}
        elif cam.model == "thinlens" and not labels and cam.aperture > 0:
            sensor = {"type": "thinlens", "fov": float(cam.fov), "fov_axis": "x",
                      "aperture_radius": float(cam.aperture), "focus_distance": float(cam.focus_distance)}
        else:
            sensor = {"type": "perspective", "fov": float(cam.fov), "fov_axis": "x"}
        sensor.update({"to_world": tw, "film": film, "sampler": sampler})
        if cam.model != "fisheye":
            sensor.update({"near_clip": 1e-3, "far_clip": 1e5})
        return sensor

    # rendering ------------------------------------------------------------
    def _scene(self, scene: SceneData, keep: list[int], shading: bool) -> Any:
        mi = self.mi
        d: dict[str, Any] = {"type": "scene", "sensor": self._sensor(scene.camera, not shading, scene.spp,
                                                                     scene.pixel_filter, scene.window)}
        if shading:
            if scene.integrator == "direct":
                d["integrator"] = {"type": "direct", "emitter_samples": 1, "bsdf_samples": 0,
                                   "hide_emitters": bool(scene.hide_environment)}
            else:
                d["integrator"] = {"type": "path", "max_depth": int(scene.max_depth),
                                   "hide_emitters": bool(scene.hide_environment)}
            if scene.env_image is not None:
                d["env"] = self._envmap(scene)
            elif scene.env_rgb is not None:
                d["env"] = {"type": "constant", "radiance": {"type": "rgb", "value": list(scene.env_rgb)}}
            for i, light in enumerate(scene.lights):
                d[f"light{i}"] = self._light(light)
        else:
            d["integrator"] = self._aov()
        for j in keep:
            d[f"shape{j}"] = self._mesh(f"shape{j}", scene.instances[j], shading)
        t0 = time.perf_counter()
        out = mi.load_dict(d)
        self.scene_seconds += time.perf_counter() - t0
        return out

    def _envmap(self, scene: SceneData) -> Any:
        """The envmap emitter of ``scene``. Building one (its sampling distribution) takes a good
        fraction of a second for a 1024x512 map, so emitters are kept per map array (the last 8) and
        only their rotation and scale are updated."""
        mi = self.mi
        cache: list[tuple[np.ndarray, Any]] = self.__dict__.setdefault("_env_cache", [])
        hit = next((e for img, e in cache if img is scene.env_image), None)
        if hit is None:
            img = scene.env_image
            img = np.require(img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img, np.float32,
                             ["C", "W"])  # Mitsuba wants a writable buffer; cached maps are read-only
            hit = mi.load_dict({"type": "envmap", "bitmap": mi.Bitmap(img)})
            cache.append((scene.env_image, hit))
            del cache[:-8]
        m4 = np.eye(4)
        if scene.env_to_world is not None:
            m4[:3, :3] = scene.env_to_world
        params = mi.traverse(hit)
        params["to_world"] = mi.ScalarTransform4f(m4.tolist())
        params["scale"] = float(scene.env_scale)
        params.update()
        return hit

    def _aov(self) -> Any:
        if self.variant not in _state["aov"]:
            _state["aov"][self.variant] = self.mi.load_dict({"type": "aov", "aovs": "si:shape_index,dd:depth"})
        return _state["aov"][self.variant]

    def _timed_render(self, mscene: Any, **kw: Any) -> np.ndarray:
        t0 = time.perf_counter()
        out = np.array(self.mi.render(mscene, **kw), dtype=np.float32)
        self.render_seconds += time.perf_counter() - t0
        return out

    def render(self, scene: SceneData) -> np.ndarray:
        """Linear RGBA float32 (H, W, 4), exposure applied; alpha is coverage by geometry where the
        environment is hidden (compositing), else 1. With ``scene.window`` set, only that crop."""
        rgba, _ = self.render_with_labels(scene, labels=False)
        return rgba

    def render_with_labels(self, scene: SceneData, labels: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """RGBA image and the instance-index label map from one scene (one acceleration structure)."""
        self._select()
        mscene = self._scene(scene, list(range(len(scene.instances))), True)
        self._last = (scene, mscene)
        out = self._timed_render(mscene, seed=int(scene.seed) & 0x7FFFFFFF)
        out[..., :3] *= float(2.0 ** scene.exposure)
        if scene.env_tint is not None:
            if scene.lights:
                raise ValueError("env_tint needs the environment to be the only light (bake it into the map)")
            out[..., :3] *= np.asarray(scene.env_tint, np.float32)
        lab = None
        if labels:
            sensor = self.mi.load_dict(self._sensor(scene.camera, True, 1))
            aov = self._timed_render(mscene, sensor=sensor, integrator=self._aov(), seed=0)
            lab = self._decode(aov, mscene)
        if scene.camera.model == "fisheye":
            _, valid = scene.camera.pixel_rays()
            out[~valid] = 0.0
            if lab is not None:
                lab[~valid] = 0
        return out, lab

    def _decode(self, aov: np.ndarray, mscene: Any) -> np.ndarray:
        """Instance labels (1 + instance index, 0 = nothing hit) from the shape-index AOV. The AOV holds the
        1-based position in ``scene.shapes()`` in the scalar variant and the shape's registry id in the JIT
        variants."""
        shapes = list(mscene.shapes())
        inst = np.asarray([int(s.id()[5:]) for s in shapes], dtype=np.int64)
        if self.variant == "scalar_rgb":
            keys = np.arange(1, len(shapes) + 1)
        else:
            import drjit as dr

            keys = np.asarray([dr.reinterpret_array(self.mi.UInt32, self.mi.ShapePtr(s))[0] for s in shapes])
        idx = np.rint(aov[..., 0]).astype(np.int64)
        hit = aov[..., 1] > 0
        lut = np.zeros(int(keys.max(initial=0)) + 2, dtype=np.int32)
        lut[keys] = inst + 1
        return np.where(hit, lut[np.clip(idx, 0, len(lut) - 1)], 0).astype(np.int32)

    def _light(self, light: Any) -> dict[str, Any]:
        mi = self.mi
        rgb = {"type": "rgb", "value": [float(c) for c in light.rgb]}
        if light.kind == "point":
            return {"type": "point", "position": list(light.position), "intensity": rgb}
        if light.kind == "spot":
            return {"type": "spot", "intensity": rgb, "cutoff_angle": float(light.cutoff_deg),
                    "beam_width": float(light.cutoff_deg) * 0.75,
                    "to_world": mi.ScalarTransform4f().look_at(
                        origin=list(light.position), target=list(light.target), up=[0, 0, 1]
                        if abs(np.subtract(light.target, light.position)[2]) < 0.99 * np.linalg.norm(
                            np.subtract(light.target, light.position)) else [0, 1, 0])}
        direction = np.subtract(light.target, light.position)
        return {"type": "directional", "direction": direction.tolist(), "irradiance": rgb}

    def see_through(self, scene: SceneData, pixels: np.ndarray, members: set[int], max_layers: int = 32) -> np.ndarray:
        """For pixel-centre rays (``pixels``: (N, 2) rows, cols), whether the ray reaches any of the
        instances ``members`` after passing through whatever else it meets first. Reuses the
        acceleration structure of the last ``render_with_labels`` call on ``scene``."""
        self._select()
        mi = self.mi
        last_scene, mscene = getattr(self, "_last", (None, None))
        if last_scene is not scene:
            mscene = self._scene(scene, list(range(len(scene.instances))), False)
        dirs, _ = scene.camera.pixel_rays()
        if self.variant != "scalar_rgb":
            return self._see_through_jit(mscene, scene, dirs, pixels, members, max_layers)
        o = mi.Point3f(*(float(c) for c in scene.camera.origin))
        out = np.zeros(len(pixels), dtype=bool)
        for n, (r, c) in enumerate(pixels):
            d = mi.Vector3f(*(float(x) for x in dirs[r, c]))
            ray = mi.Ray3f(o, d)
            for _ in range(max_layers):
                si = mscene.ray_intersect(ray)
                if not si.is_valid():
                    break
                if int(si.shape.id()[5:]) in members:
                    out[n] = True
                    break
                ray = si.spawn_ray(d)
        return out

    def _see_through_jit(self, mscene: Any, scene: SceneData, dirs: np.ndarray, pixels: np.ndarray,
                         members: set[int], max_layers: int) -> np.ndarray:
        """:meth:`see_through` for the JIT variants: every ray at once, one intersection pass per layer;
        shapes are told apart by their registry ids (``ShapePtr``)."""
        import drjit as dr

        mi = self.mi
        if len(pixels) == 0:
            return np.zeros(0, dtype=bool)
        wanted = [dr.reinterpret_array(mi.UInt32, mi.ShapePtr(s))[0] for s in mscene.shapes()
                  if int(s.id()[5:]) in members]
        d_np = dirs[pixels[:, 0], pixels[:, 1]].astype(np.float32)
        d = mi.Vector3f(d_np[:, 0], d_np[:, 1], d_np[:, 2])
        o = mi.Point3f(*(float(c) for c in scene.camera.origin))
        ray = mi.Ray3f(o, d)
        active = dr.full(mi.Bool, True, len(pixels))
        found = dr.full(mi.Bool, False, len(pixels))
        for _ in range(max_layers):
            si = mscene.ray_intersect(ray, active)
            valid = active & si.is_valid()
            rid = dr.reinterpret_array(mi.UInt32, si.shape)
            hit = dr.full(mi.Bool, False, len(pixels))
            for w in wanted:
                hit |= rid == w
            hit &= valid
            found |= hit
            active = valid & ~hit
            if not dr.any(active):
                break
            ray = si.spawn_ray(d)
        return np.array(found, dtype=bool)

    def labels(self, scene: SceneData, only: list[int] | None = None) -> np.ndarray:
        """Instance-index map (H, W) int32: 1 + index into ``scene.instances`` of the surface hit by
        the ray through each pixel centre, 0 where nothing is hit. ``only`` restricts the scene to
        those instance indices (amodal masks)."""
        self._select()
        keep = list(range(len(scene.instances))) if only is None else list(only)
        mscene = self._scene(scene, keep, False)
        out = self._decode(self._timed_render(mscene, seed=0), mscene)
        if scene.camera.model == "fisheye":
            _, valid = scene.camera.pixel_rays()
            out[~valid] = 0
        return out
