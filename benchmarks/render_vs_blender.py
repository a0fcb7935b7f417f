"""simreal end to end against Blender's Cycles on the same scenes, side by side, in one run.

The scene: one canister mesh exported to PLY (loaded by simreal as a mesh asset), two flying
distractors, one photo composited behind, a constant environment (hidden) and one or two point
lights; 16 samples per pixel, path depth 3, box pixel filter; 128² and 256². simreal renders
``--counts`` images with ``simreal.render.job.render_dataset`` (sampling, geometry, path tracing,
exact instance labels, amodal masks, COCO annotations, PNG images and 16-bit masks written, the
manifest), timed from the call to the finished dataset. The very same scenes (same sampled
parameters, rebuilt through ``build_scene``, world-space meshes, materials, lights, camera and the
photo crop) are exported and rendered by Cycles on the CPU in one Blender process
(``benchmarks/blender_cycles.py``: same spp, no adaptive sampling, no denoising, same bounces and
filter, same thread count, its own PNG write, no labels). Cycles' "raw" throughput counts only its
``render(write_still=True)`` calls; building each scene in Blender and Blender's start-up are
reported separately.

Usage: python benchmarks/render_vs_blender.py [--resolutions 128,256] [--counts 96,32] [--threads 1,2]
       [--rounds 2] [--canister-segments 24] [--blender blender] [--keep DIR]
Needs Debian's ``blender`` (apt-get install -y blender). Prints a markdown table and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from simreal.config import load_config
from simreal.datasets import Dataset
from simreal.render.build import background_image, build_scene
from simreal.render.canister import canister_parts, sample_canister_params
from simreal.render.job import render_dataset
from simreal.render.library import build_library, builtin_photos
from simreal.render.randomize import sample_params
from simreal.render.spec import SceneConfig
from simreal.runtime.seeding import sample_rng, sample_seed

HERE = Path(__file__).resolve().parent


def make_assets(work: Path, segments: int) -> tuple[Path, Path]:
    """A canister (its parts merged into one mesh) as PLY, and a folder with one photo."""
    import trimesh  # here, not at the top: spawned render workers re-import this script

    parts = canister_parts(sample_canister_params(np.random.default_rng(3), {"segments": segments}))
    verts, faces, normals, base = [], [], [], 0
    for mesh in parts.values():
        verts.append(mesh.vertices)
        faces.append(mesh.faces + base)
        normals.append(mesh.normals)
        base += len(mesh.vertices)
    ply = work / "canister.ply"
    trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), vertex_normals=np.concatenate(normals),
                    process=False).export(ply)
    photos = work / "photos"
    photos.mkdir()
    src = sorted(builtin_photos().iterdir())[0]
    shutil.copy(src.resolve(), photos / src.name)
    return ply, photos


def scene_config(ply: Path, photos: Path, res: int, count: int) -> dict[str, Any]:
    return {
        "name": f"vs-blender-{res}", "seed": 11, "count": count, "resolution": [res, res],
        "objects": [{"category": "canister", "asset": {"kind": "mesh", "path": str(ply)}, "size": [0.8, 1.2],
                     "tilt": [0.0, 90.0]}],
        "material": {"roughness": [0.2, 0.9], "metallic": [0.0, 0.3], "textures": {"probability": 0.0},
                     "wear_probability": 0.0},
        "camera": {"model": "pinhole", "theta": [20.0, 110.0], "radius": [2.2, 3.5], "fov": [30.0, 45.0],
                   "look_at_jitter": 0.15, "roll": [-20.0, 20.0], "exposure": [-0.5, 0.5]},
        "lighting": {"environment": {"kind": "constant", "intensity": [0.2, 0.6]},
                     "lights": {"count": [1, 2], "kinds": ["point"], "intensity": [0.5, 2.0]}},
        "background": {"weights": {"photo": 1.0}, "photo_folder": str(photos), "photo_mode": "composite"},
        "distractors": {"count": [2, 2], "shapes": ["cube", "sphere", "cylinder"], "size": [0.15, 0.5],
                        "distance": [0.3, 1.2], "segments": 32},
        "negatives": 0.0,
        "post": {k: {"p": 0.0} for k in ("lut", "blur", "vignette", "grain", "jpeg")},
        "render": {"spp": 16, "max_depth": 3, "filter": "box"},
    }


def export_for_blender(cfg: SceneConfig, ds: Dataset, folder: Path) -> Path:
    """Rebuild every rendered scene from its seed (checked against the params the dataset
    recorded) and write what Blender needs: meshes (.npz), materials, lights, camera, photo crop."""
    lib = build_library(cfg)
    scenes = []
    for i in range(cfg.count):
        params = sample_params(cfg, lib, sample_rng(cfg.seed, i))
        recorded = next(r["params"] for r in ds.images if r["sample"] == i)
        assert json.loads(json.dumps(params)) == recorded, f"scene {i} differs from the rendered one"
        scene = build_scene(cfg, lib, params, sample_seed(cfg.seed, i))
        blob, entries, materials = bytearray(), [], []
        for inst in scene.instances:
            entry = {}
            for key, arr, dtype in (("vertices", inst.mesh.vertices, "<f4"), ("faces", inst.mesh.faces, "<i4"),
                                    ("normals", inst.mesh.normals, "<f4")):
                if arr is not None:
                    raw = np.ascontiguousarray(arr, dtype=dtype).tobytes()
                    entry[key] = {"offset": len(blob), "nbytes": len(raw)}
                    blob += raw
            entries.append(entry)
            m = inst.material
            assert m.texture is None
            materials.append({"base_color": [float(c) for c in m.base_color], "roughness": m.roughness,
                              "metallic": m.metallic})
        (folder / f"scene{i:04d}.bin").write_bytes(bytes(blob))
        bg = background_image(cfg, params)
        assert bg is not None and scene.hide_environment and scene.env_rgb is not None
        Image.fromarray((bg * 255 + 0.5).astype(np.uint8)).save(folder / f"bg{i:04d}.png")
        assert all(light.kind == "point" for light in scene.lights)
        scenes.append({
            "camera": {"to_world": scene.camera.to_world.tolist(), "fov": scene.camera.fov,
                       "exposure": scene.exposure},
            "meshes": f"scene{i:04d}.bin", "mesh_arrays": entries, "materials": materials,
            "lights": [{"position": list(light.position), "rgb": list(light.rgb)} for light in scene.lights],
            "env_rgb": list(scene.env_rgb), "background": f"bg{i:04d}.png",
        })
    spec = {"resolution": list(cfg.resolution), "spp": cfg.render.spp, "max_depth": cfg.render.max_depth,
            "pixel_filter": cfg.render.filter, "scenes": scenes}
    path = folder / "scenes.json"
    path.write_text(json.dumps(spec))
    return path


def _ply_faces(path: Path) -> int:
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"element face"):
                return int(line.split()[2])
    return 0


def blender_startup(blender: str, repeats: int = 3) -> float:
    """Median wall time of a Blender that starts, runs an empty script and quits."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([blender, "-b", "--factory-startup", "--python-expr", "pass"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_blender(blender: str, spec: Path, out: Path, threads: int) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([blender, "-b", "--factory-startup", "-P", str(HERE / "blender_cycles.py"), "--",
                           str(spec), str(out), str(threads)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not (out / "blender_timings.json").is_file():
        raise SystemExit(f"blender failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads((out / "blender_timings.json").read_text()), wall


def side_by_side(ours: Path, theirs: Path, out: Path) -> float:
    """Both renders of one scene next to each other; returns the mean absolute difference (0-255)."""
    a = np.asarray(Image.open(ours).convert("RGB"), dtype=np.float32)
    b = np.asarray(Image.open(theirs).convert("RGB"), dtype=np.float32)
    Image.fromarray(np.concatenate([a, b], axis=1).astype(np.uint8)).save(out)
    return float(np.abs(a - b).mean())


def run_pair(cfg: SceneConfig, root: Path, res: int, threads: int, blender: str) -> dict[str, float]:
    """One simreal run and one Blender run of the same ``cfg.count`` scenes with ``threads``."""
    out = root / f"simreal-{res}-{threads}"
    shutil.rmtree(out, ignore_errors=True)
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    s = render_dataset(cfg, out, workers=threads, quiet=True)
    ours_wall = time.perf_counter() - t0
    ours_cpu = _cpu_seconds() - cpu0  # the driver and its (already exited) workers
    assert s.rendered == cfg.count and s.failed == 0
    spec_dir = root / f"export-{res}"
    if not (spec_dir / "scenes.json").is_file():
        spec_dir.mkdir(exist_ok=True)
        export_for_blender(cfg, Dataset.open(out), spec_dir)
    bl_out = root / f"blender-{res}-{threads}"
    shutil.rmtree(bl_out, ignore_errors=True)
    timings, bl_wall = run_blender(blender, spec_dir / "scenes.json", bl_out, threads)
    render_s = sum(t["render"] for t in timings["images"])
    render_cpu = sum(t["render_cpu"] for t in timings["images"])
    setup_s = sum(t["setup"] for t in timings["images"])
    diff = side_by_side(Dataset.open(out).image_path(0), bl_out / "0000000.png", root / f"side_by_side-{res}.png")
    return {"ours": cfg.count / ours_wall, "steady": s.steady_rate, "raw": cfg.count / render_s,
            "with_setup": cfg.count / (render_s + setup_s), "process": bl_wall, "diff": diff,
            "ours_cpu": ours_cpu / cfg.count, "raw_cpu": render_cpu / cfg.count}


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its children that have exited."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", default="128,256")
    ap.add_argument("--counts", default="96,32", help="images per side, one per resolution")
    ap.add_argument("--threads", default="1,2", help="simreal workers = Cycles threads")
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternate the two sides this many times and keep each side's best (the machine is shared)")
    ap.add_argument("--canister-segments", type=int, default=24,
                    help="segments around the canister (24: the low tier's; 48 doubles its triangles)")
    ap.add_argument("--blender", default="blender")
    ap.add_argument("--keep", type=Path, default=None, help="keep datasets, Blender renders and side-by-sides here")
    args = ap.parse_args()
    if shutil.which(args.blender) is None:
        raise SystemExit(f"{args.blender}: not found (apt-get install -y blender)")
    version = subprocess.run([args.blender, "-b", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    startup = blender_startup(args.blender)
    root = Path(tempfile.mkdtemp(prefix="simreal-vs-blender-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    ply, photos = make_assets(Path(tempfile.mkdtemp(dir=root)), args.canister_segments)
    faces = _ply_faces(ply)
    print(f"{version}; simreal scalar_rgb; canister {faces} triangles; load before: {os.getloadavg()[0]:.2f}; "
          f"Blender start-up {startup:.2f} s (median of 3, not in any rate below); best of {args.rounds} "
          "alternating rounds\n")
    print("| res | threads | images | simreal end to end img/s | simreal steady img/s | Cycles raw img/s | "
          "Cycles incl. scene build img/s | Blender process s | simreal / Cycles raw | simreal CPU s/img | "
          "Cycles raw CPU s/img | simreal / Cycles raw, by CPU time | mean abs diff (0-255) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    counts = [int(c) for c in args.counts.split(",")]
    for res, count in zip((int(r) for r in args.resolutions.split(",")), counts, strict=True):
        data = scene_config(ply, photos, res, count)
        cfg = load_config(SceneConfig, None, data)
        (root / f"scene-{res}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        for threads in (int(t) for t in args.threads.split(",")):
            runs = [run_pair(cfg, root, res, threads, args.blender) for _ in range(args.rounds)]
            best = {k: max(r[k] for r in runs) for k in ("ours", "steady", "raw", "with_setup")}
            best.update({k: min(r[k] for r in runs) for k in ("process", "ours_cpu", "raw_cpu")})
            print(f"| {res}² | {threads} | {count} | {best['ours']:.2f} | {best['steady']:.2f} | {best['raw']:.2f} | "
                  f"{best['with_setup']:.2f} | {best['process']:.1f} | {best['ours'] / best['raw']:.2f}× | "
                  f"{best['ours_cpu']:.3f} | {best['raw_cpu']:.3f} | {best['raw_cpu'] / best['ours_cpu']:.2f}× | "
                  f"{runs[0]['diff']:.1f} |", flush=True)
    print(f"\nload after: {os.getloadavg()[0]:.2f}" + (f"; outputs in {root}" if args.keep else ""))
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
