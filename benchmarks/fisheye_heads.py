"""Head detection from a ceiling fisheye, after the published compositing study: train the head detector
on synthetic scenes S, on S refined by crop -> refine -> reinsert, and on S plus a few labelled target
images, then report precision, recall and F1 at IoU 0.5 on a target test set.

- S: people composited into procedural rooms (style A) by ``simreal render`` (``type: people_scene``,
  category ``head``).
- The target (a stand-in for a real site): other procedural rooms (style B: carpets, darker, more
  furniture, a lower camera) exported as photos + furniture JSON (``simreal people rooms``), people
  composited into those photos under dimmer, warmer light, and a "real camera" on the whole image
  (sensor noise, lens blur, vignetting, JPEG). Unlabelled target images train the refiner; a few of
  them (with labels) form the "+ few target" set; a separate target test set is scored.
- Refinement: CUT on 48-pixel upright crops around the heads (rotated by each annotation's
  ``rotation``), reinserted into the S images (``simreal.refine`` / ``simreal.refine.apply``).
- Detector: ``simreal.train`` task detect (SqueezeDet head, source only), ``simreal.evaluate``.
- Reference row: the S detector on held-out S images (in domain), which tells "the detector did not
  learn" apart from "what it learnt does not transfer to the target".

Usage: python benchmarks/fisheye_heads.py [--res 320] [--s 120] [--target 60] [--few 8] [--test 40]
                                          [--steps 600] [--workers 2] [--out /tmp/fisheye_heads]
(Set OMP_NUM_THREADS=1 on a busy machine: oversubscribed OpenMP threads make CPU training crawl.)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import simreal


def scene_config(res: int, name: str, seed: int, count: int) -> dict[str, Any]:
    return {"type": "people_scene", "name": name, "seed": seed, "count": count, "resolution": [res, res],
            "categories": ["head"], "render": {"spp": 4}, "supersample": 1.5,
            "people": {"standing": [1, 5], "sitting": [0, 4], "identities": 12, "pose_variants": 1},
            "background": {"rooms": {"count": 4, "spp": 8}}}


def target_rooms_config(res: int) -> dict[str, Any]:
    cfg = scene_config(res, "target-rooms", 77, 1)
    cfg["camera"] = {"height": [2.5, 2.8]}
    cfg["background"] = {"rooms": {"count": 3, "spp": 8, "floor_textures": ["noise"], "brightness": [0.2, 0.5],
                                   "desks": [5, 9], "width": [8.0, 11.0], "depth": [8.0, 11.0]}}
    return cfg


def target_config(res: int, photos: Path, name: str, seed: int, count: int) -> dict[str, Any]:
    cfg = scene_config(res, name, seed, count)
    cfg["background"] = {"photo_folder": str(photos), "require_json": True}
    cfg["lighting"] = {"temperature": [2800.0, 3500.0], "ambient": [0.15, 0.35], "kinds": {"lamp": 1.0}}
    cfg["motion_blur"] = {"probability": 0.7, "length": [1.0, 4.0]}
    cfg["post"] = {"blur": {"p": 0.7, "sigma": [0.5, 1.0]}, "grain": {"p": 1.0, "intensity": [0.02, 0.05]},
                   "vignette": {"p": 1.0, "strength": [0.2, 0.4]}, "jpeg": {"p": 1.0, "quality": [40, 70]},
                   "lut": {"p": 0.0}}
    return cfg


def detector_config(res: int, domains: list[dict[str, Any]], steps: int, arch: str) -> dict[str, Any]:
    return {"task": "detect", "seed": 0,
            "data": {"image_size": [res, res], "channels": 3, "domains": domains},
            "model": {"arch": arch, "width": 32},
            "method": {"name": "source_only"},
            "optim": {"steps": steps, "batch_per_domain": 8, "lr": 0.001, "lr_schedule": "cosine"},
            "selection": {"policy": "last"}, "checkpoint_every": steps,
            "detect": {"num_anchors": 4, "score_threshold": 0.3, "nms_iou": 0.4}}


def refiner_config(epochs: int) -> dict[str, Any]:
    return {"model": "cut", "net": {"ngf": 16, "ndf": 16, "n_blocks": 4},
            "crops": {"enabled": True, "size": 48, "rotate_upright": True, "feather": 0.25, "mask_dilate": 1},
            "cut": {"num_patches": 64, "netf_nc": 64},
            "train": {"epochs": epochs, "epochs_decay": epochs, "batch_size": 8, "num_samples": 4}}


def labelled_subset(src: Path, out: Path, n: int) -> Path:
    """The first ``n`` images of a dataset (with their labels) as a dataset of its own."""
    import shutil

    from simreal.datasets.coco import image_file
    from simreal.datasets.contract import DatasetWriter, open_dataset

    if (out / "annotations.json").is_file():
        return out
    ds = open_dataset(src)
    w = DatasetWriter(out, f"{ds.name}-few", "real", ds.categories)
    images, anns = [], []
    for i in range(min(n, len(ds))):
        rec = dict(ds.images[i])
        pairs = [(image_file(src, rec), image_file(out, rec))]
        if rec.get("mask_file"):
            pairs.append((src / rec["mask_file"], out / rec["mask_file"]))
        for a, b in pairs:
            b.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(a, b)
        anns += [dict(a) for a in ds.anns(i)]
        images.append(rec)
    w.finalize(images, anns)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, default=320)
    ap.add_argument("--s", type=int, default=120, help="synthetic training images")
    ap.add_argument("--target", type=int, default=60, help="unlabelled target images (refiner training)")
    ap.add_argument("--few", type=int, default=8, help="labelled target images added to S")
    ap.add_argument("--test", type=int, default=40, help="target test images")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--arch", default="squeezedet_tiny")
    ap.add_argument("--refine-epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="/tmp/fisheye_heads")
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    from simreal.render.api import load_render_config
    from simreal.render.people.room import export_rooms

    export_rooms(load_render_config(target_rooms_config(args.res)), root / "target_photos", quiet=True)
    s = root / "S"
    simreal.render(scene_config(args.res, "S", 1, args.s), s, workers=args.workers, progress=False)
    tu = root / "target_unlabelled"
    simreal.render(target_config(args.res, root / "target_photos", "target", 2, args.target), tu,
                   workers=args.workers, progress=False)
    tt = root / "target_test"
    simreal.render(target_config(args.res, root / "target_photos", "target-test", 3, args.test), tt,
                   workers=args.workers, progress=False)
    few = labelled_subset(tu, root / "target_few", args.few)
    s_test = root / "S_test"  # held-out synthetic images: the in-domain reference for the S detector
    simreal.render(scene_config(args.res, "S-test", 4, args.test), s_test, workers=args.workers, progress=False)
    times["render"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    simreal.refine(s, tu, root / "refiner", refiner_config(args.refine_epochs), progress=False)
    s_ref = root / "S_refined"
    simreal.refine.apply(root / "refiner", s, s_ref, progress=False)
    times["refine (train + apply)"] = time.perf_counter() - t0
    variants = {
        "synthetic S": [{"path": str(s), "name": "S", "role": "source"}],
        "refined S (crop-refine-reinsert)": [{"path": str(s_ref), "name": "S_refined", "role": "source"}],
        f"S + {args.few} target images": [{"path": str(s), "name": "S", "role": "source"},
                                          {"path": str(few), "name": "few", "role": "source"}],
    }
    rows = []
    t0 = time.perf_counter()
    for k, (name, domains) in enumerate(variants.items()):
        run = root / f"run_{k}"
        simreal.train(detector_config(args.res, domains, args.steps, args.arch), run, progress=False)
        m = simreal.evaluate(run, tt, root / f"eval_{k}").metrics
        rows.append((name, m))
        if k == 0:
            rows.append(("reference: synthetic S on held-out S (in-domain, not the target)",
                         simreal.evaluate(run, s_test, root / "eval_S_on_S").metrics))
    times["train + eval (3 detectors)"] = time.perf_counter() - t0
    n_heads = sum(1 for _ in json.loads((tt / "annotations.json").read_text())["annotations"])
    print(f"\nHead detection on the target test set ({args.test} images, {n_heads} heads, {args.res}x{args.res} "
          f"fisheye); {args.arch}, {args.steps} steps; S = {args.s} images\n")
    print("| training data | precision | recall | F1 | AP50 |")
    print("|---|---|---|---|---|")
    for name, m in rows:
        ap50 = m.get("AP50")
        print(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
              f"{'-' if ap50 is None else f'{ap50:.3f}'} |")
    print("\n| stage | seconds |\n|---|---|")
    for k, v in times.items():
        print(f"| {k} | {v:.0f} |")
    print(f"| total | {time.perf_counter() - t_all:.0f} |")
    print(f"load average at the end: {os.getloadavg()}")
    (root / "results.json").write_text(json.dumps({"rows": [[n, m] for n, m in rows], "times": times}, indent=1,
                                                  default=str))


if __name__ == "__main__":
    main()
