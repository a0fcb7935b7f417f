"""Blender side of ``render_vs_blender.py``: render scenes exported by simreal with Cycles on the CPU.

Run by that script as ``blender -b --factory-startup -P benchmarks/blender_cycles.py -- SPEC OUT THREADS``.
SPEC is the JSON written by ``render_vs_blender.py``: render settings and, per scene, the camera,
the world-space meshes (raw little-endian float32/int32 arrays in a .bin file), principled
materials, point lights, the constant environment and the background photo crop. Only Blender's
own Python modules are used (Debian's Blender runs the system Python, which may lack numpy).

Each scene is built (timed as "setup"), then rendered and written as a PNG by Blender itself
(timed as "render", wall-clock and CPU time of all threads: ``bpy.ops.render.render(write_still=True)``,
which includes Cycles' scene sync and BVH build, path tracing, compositing the photo behind and the
PNG write). No labels. Timings go to OUT/blender_timings.json.
"""

from __future__ import annotations

import json
import math
import sys
import time
from array import array
from pathlib import Path

import bpy
from mathutils import Matrix

# Blender's point light of power P (W) radiates P / (4 pi^2) W/sr in Cycles (the extra 1/pi is
# Cycles' lamp convention); Mitsuba's point "intensity" is W/sr.
POINT_POWER_PER_INTENSITY = 4.0 * math.pi**2


def configure(scene: bpy.types.Scene, spec: dict, threads: int) -> None:
    """Cycles on the CPU with the same samples, bounces, pixel filter and threads as simreal."""
    scene.render.engine = "CYCLES"
    cy = scene.cycles
    cy.device = "CPU"
    cy.samples = int(spec["spp"])
    cy.use_adaptive_sampling = False  # exactly spp samples per pixel, as simreal
    cy.use_denoising = False  # Debian's Blender is built without OpenImageDenoise
    # Mitsuba's max_depth d = paths of d segments: d - 2 indirect bounces in Cycles' counting
    bounces = max(0, int(spec["max_depth"]) - 2)
    cy.max_bounces = cy.diffuse_bounces = cy.glossy_bounces = cy.transmission_bounces = bounces
    cy.volume_bounces = 0
    cy.transparent_max_bounces = 0
    cy.pixel_filter_type = "BOX" if spec["pixel_filter"] == "box" else "GAUSSIAN"
    cy.seed = 0
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    scene.render.resolution_x, scene.render.resolution_y = spec["resolution"]
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True  # the environment lights but is hidden, as simreal's composite mode
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "Standard"  # plain sRGB, as simreal
    scene.view_settings.look = "None"
    scene.render.use_compositing = True
    scene.use_nodes = True
    tree = scene.node_tree
    tree.nodes.clear()
    layers = tree.nodes.new("CompositorNodeRLayers")
    photo = tree.nodes.new("CompositorNodeImage")
    photo.name = "photo"
    over = tree.nodes.new("CompositorNodeAlphaOver")
    out = tree.nodes.new("CompositorNodeComposite")
    tree.links.new(photo.outputs["Image"], over.inputs[1])
    tree.links.new(layers.outputs["Image"], over.inputs[2])
    tree.links.new(over.outputs["Image"], out.inputs["Image"])


def clear(keep: set[str]) -> None:
    for obj in list(bpy.data.objects):
        if obj.name not in keep:
            bpy.data.objects.remove(obj, do_unlink=True)
    for coll in (bpy.data.meshes, bpy.data.materials, bpy.data.lights, bpy.data.images):
        for block in list(coll):
            if block.users == 0:
                coll.remove(block)


def _read(blob: bytes, entry: dict, kind: str) -> array:
    a = array(kind)
    a.frombytes(blob[entry["offset"]:entry["offset"] + entry["nbytes"]])
    return a


def add_mesh(name: str, blob: bytes, entry: dict, material: dict) -> None:
    verts, faces = _read(blob, entry["vertices"], "f"), _read(blob, entry["faces"], "i")
    nv, nf = len(verts) // 3, len(faces) // 3
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(nv)
    mesh.vertices.foreach_set("co", verts)
    mesh.loops.add(3 * nf)
    mesh.loops.foreach_set("vertex_index", faces)
    mesh.polygons.add(nf)
    mesh.polygons.foreach_set("loop_start", range(0, 3 * nf, 3))
    mesh.polygons.foreach_set("loop_total", [3] * nf)
    mesh.update()
    mesh.validate()
    if "normals" in entry:
        n = _read(blob, entry["normals"], "f")
        mesh.polygons.foreach_set("use_smooth", [True] * nf)
        mesh.use_auto_smooth = True
        mesh.normals_split_custom_set_from_vertices([tuple(n[3 * i:3 * i + 3]) for i in range(nv)])
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*material["base_color"], 1.0)
    bsdf.inputs["Roughness"].default_value = material["roughness"]
    bsdf.inputs["Metallic"].default_value = material["metallic"]
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)


def build(scene: bpy.types.Scene, s: dict, folder: Path, camera: bpy.types.Object) -> None:
    """Camera, meshes, materials, lights, environment and background photo of one exported scene."""
    cam = s["camera"]
    m = cam["to_world"]
    # simreal/Mitsuba camera columns: left, up, forward; Blender's camera: right (+X), up (+Y), back (+Z)
    camera.matrix_world = Matrix([[-m[r][0], m[r][1], -m[r][2], m[r][3]] for r in range(3)] + [[0.0, 0.0, 0.0, 1.0]])
    camera.data.sensor_fit = "HORIZONTAL"
    camera.data.angle = math.radians(cam["fov"])
    camera.data.clip_start, camera.data.clip_end = 1e-3, 1e5
    scene.view_settings.exposure = cam["exposure"]
    blob = (folder / s["meshes"]).read_bytes()
    for k, (entry, mat) in enumerate(zip(s["mesh_arrays"], s["materials"], strict=True)):
        add_mesh(f"shape{k}", blob, entry, mat)
    for k, light in enumerate(s["lights"]):
        rgb = light["rgb"]
        data = bpy.data.lights.new(f"light{k}", "POINT")
        data.energy = max(rgb) * POINT_POWER_PER_INTENSITY
        data.color = tuple(c / max(rgb) for c in rgb)
        data.shadow_soft_size = 0.0  # a point, as Mitsuba's
        obj = bpy.data.objects.new(f"light{k}", data)
        obj.location = light["position"]
        scene.collection.objects.link(obj)
    world = scene.world
    world.use_nodes = True
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (*s["env_rgb"], 1.0)
    bg.inputs["Strength"].default_value = 1.0
    photo = scene.node_tree.nodes["photo"]
    photo.image = bpy.data.images.load(str(folder / s["background"]))


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1:]
    spec_path, out, threads = Path(argv[0]), Path(argv[1]), int(argv[2])
    spec = json.loads(spec_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    scene = bpy.context.scene
    configure(scene, spec, threads)
    camera = scene.objects.get("Camera")
    scene.camera = camera
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    timings = []
    for i, s in enumerate(spec["scenes"]):
        t0 = time.perf_counter()
        clear({camera.name})
        build(scene, s, spec_path.parent, camera)
        scene.render.filepath = str(out / f"{i:07d}.png")
        t1, c1 = time.perf_counter(), time.process_time()
        bpy.ops.render.render(write_still=True)
        t2, c2 = time.perf_counter(), time.process_time()
        timings.append({"setup": t1 - t0, "render": t2 - t1, "render_cpu": c2 - c1})
    (out / "blender_timings.json").write_text(json.dumps({"threads": threads, "images": timings}))


main()
