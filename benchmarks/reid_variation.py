"""Re-identification variation ablation, after the published synthetic re-id study (datasets I-IV):

- I:   plain backgrounds, bright plain clothes, no hair, no accessories
- II:  + procedural rooms behind the person, realistic palette, garment textures
- III: + hair styles and accessories
- IV:  + photo backgrounds (one half of the built-in photos), everything on
- V:   IV + environment maps: a third of the views in front of a real HDR map that also lights the
  person (``background.weights.envmap``; ``builtin:hdri``, Debian blender-data's eight CC0 maps), as
  SyRI (Bak et al., ECCV 2018) lit and backed its people with HDR maps
- IV refined: IV translated towards the test site by a CycleGAN trained on unlabelled test-site crops
  (other identities than the test set), through ``simreal.refine`` / ``simreal.refine.apply``
- baseline: no training at all, HSV colour histograms of the crop's central strip (the floor a trained
  model must clear; chance rank-1 is 1 / test identities)

Each set trains the same re-id model (``simreal.train``, task reid, identity softmax + batch-hard
triplet, source only) and is tested (``simreal.evaluate``, Market-1501 rules: CMC rank-1/5/10 and mAP)
on a held-out site: new identities, cameras 1.4 m higher, dimmer and warmer light, and the other half
of the photos as backgrounds. CPU-sized: a few dozen identities and a few hundred steps, so the
figures are noisy; the script prints how long everything took.

Usage: python benchmarks/reid_variation.py [--ids 24] [--views 8] [--test-ids 16] [--steps 300]
                                           [--workers 2] [--out /tmp/reid_variation]
                                           [--sets I,II,III,IV,V,IV-refined]
(Set OMP_NUM_THREADS=1 on a busy machine: oversubscribed OpenMP threads make CPU training crawl.)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import simreal

BASE: dict[str, Any] = {
    "type": "people", "resolution": [64, 128], "image_format": "png", "render": {"spp": 8, "max_depth": 3},
    "camera": {"cameras": 6, "height": [1.6, 3.2], "distance": [3.0, 7.0]},
    "poses": {"standing": 1.0, "walking": 2.0},
}
SETS = ("I", "II", "III", "IV", "V", "IV-refined")
NO_HAIR = {"styles": {"bald": 1.0}}
NO_ACC = {"probabilities": {"backpack": 0.0, "bag": 0.0, "hat": 0.0, "glasses": 0.0}}


def set_config(name: str, photos_a: str) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE)
    if name == "I":
        cfg["background"] = {"weights": {"plain": 1.0}}
        cfg["character"] = {"clothing": {"palette": "bright", "texture_probability": 0.0}, "hair": NO_HAIR,
                            "accessories": NO_ACC}
    elif name == "II":
        cfg["background"] = {"weights": {"plain": 1.0, "room": 2.0}}
        cfg["character"] = {"clothing": {"palette": "realistic", "texture_probability": 0.5}, "hair": NO_HAIR,
                            "accessories": NO_ACC}
    elif name == "III":
        cfg["background"] = {"weights": {"plain": 1.0, "room": 2.0}}
        cfg["character"] = {"clothing": {"palette": "realistic", "texture_probability": 0.5}}
    elif name == "IV":  # everything, photos too
        cfg["background"] = {"weights": {"plain": 1.0, "room": 1.0, "photo": 2.0}, "photo_folder": photos_a}
        cfg["character"] = {"clothing": {"palette": "realistic", "texture_probability": 0.5}}
    else:  # V: IV + environment maps (a third of the views), the maps lighting the person
        cfg["background"] = {"weights": {"plain": 1.0, "room": 1.0, "photo": 2.0, "envmap": 2.0},
                             "photo_folder": photos_a, "hdr_folder": "builtin:hdri"}
        cfg["character"] = {"clothing": {"palette": "realistic", "texture_probability": 0.5}}
    return cfg


def site_config(photos_b: str) -> dict[str, Any]:
    """The held-out site: higher cameras, dim warm light, other photos, everything varied."""
    cfg = copy.deepcopy(BASE)
    cfg["camera"] = {"cameras": 4, "height": [3.0, 4.6], "distance": [3.0, 7.0]}
    cfg["background"] = {"weights": {"room": 1.0, "photo": 3.0}, "photo_folder": photos_b}
    cfg["lighting"] = {"ambient": [0.15, 0.35], "sun": [0.6, 1.6], "temperature": [2700.0, 3600.0]}
    cfg["character"] = {"clothing": {"palette": "realistic", "texture_probability": 0.5}}
    return cfg


def split_photos(root: Path) -> tuple[str, str]:
    """The built-in photos split in two halves (training backgrounds vs the held-out site's)."""
    from simreal.render.library import builtin_photos

    files = sorted(p for p in builtin_photos().iterdir() if p.suffix.lower() in (".jpg", ".png"))
    out = []
    for k, part in enumerate((files[0::2], files[1::2])):
        d = root / f"photos_{'ab'[k]}"
        d.mkdir(parents=True, exist_ok=True)
        for f in part:
            if not (d / f.name).exists():
                shutil.copy(f, d / f.name)
        out.append(str(d))
    return out[0], out[1]


def train_config(data: Path, steps: int, arch: str = "resnet18", width: int = 32) -> dict[str, Any]:
    # the backbone's own feature size: no reduction layer (ResNet-18: 512, smallcnn: 4 * width)
    model = {"arch": arch, "embedding_dim": 512} if arch.startswith("resnet") else \
        {"arch": arch, "width": width, "embedding_dim": 4 * width}
    return {
        "task": "reid", "seed": 0,
        "data": {"image_size": [128, 64], "channels": 3,
                 "domains": [{"path": str(data), "name": "synthetic", "role": "source"}]},
        "model": model,
        "method": {"name": "source_only", "triplet_weight": 1.0, "triplet_margin": 0.3},
        "optim": {"steps": steps, "batch_per_domain": 32, "lr": 0.00035, "lr_schedule": "cosine"},
        "selection": {"policy": "last"},
        "reid": {"label_smoothing": 0.1, "instances_per_identity": 4, "distance": "euclidean", "normalize": True},
        "checkpoint_every": steps,
    }


def colour_histogram_baseline(market: Path) -> dict[str, Any]:
    """A training-free floor: HSV histograms (8 x 3 x 3 bins) of the central half of the crop's width in four
    horizontal bands (head, torso, legs, feet), square-rooted, compared by Euclidean distance on L2-normalised
    vectors, scored like the models (Market-1501 rules)."""
    import numpy as np
    from PIL import Image

    from simreal.datasets.reid_layouts import read_market1501
    from simreal.metrics.reid import evaluate_reid
    from simreal.tasks.reid import embedding_distance

    recs, _ = read_market1501(market)
    feats = []
    for r in recs:
        im = np.asarray(Image.open(market / r["file_name"]).convert("HSV").resize((32, 64)), np.float64)[:, 8:24]
        bands = [np.histogramdd(b.reshape(-1, 3), bins=(8, 3, 3), range=((0, 256),) * 3)[0].ravel()
                 for b in np.array_split(im, 4, axis=0)]
        feats.append(np.sqrt(np.concatenate([b / b.sum() for b in bands])))
    emb = np.stack(feats)
    pids = np.array([r["identity"] for r in recs])
    cams = np.array([r["camera"] for r in recs])
    split = np.array([r["split"] for r in recs])
    q, g = split == "query", split == "gallery"
    res = evaluate_reid(embedding_distance(emb[q], emb[g]), pids[q], pids[g], cams[q], cams[g])
    return {**res, "num_query": int(q.sum()), "num_gallery": int(g.sum())}


def refiner_config(epochs: int) -> dict[str, Any]:
    return {"model": "cyclegan", "net": {"ngf": 16, "ndf": 16, "n_blocks": 4},
            "data": {"crop_size": 64, "flip": True},
            "train": {"epochs": epochs, "epochs_decay": epochs, "batch_size": 4, "num_samples": 4}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=24, help="identities per training set")
    ap.add_argument("--views", type=int, default=8, help="images per identity")
    ap.add_argument("--test-ids", type=int, default=16)
    ap.add_argument("--target-ids", type=int, default=16, help="unlabelled test-site identities for refinement")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--refine-epochs", type=int, default=3)
    ap.add_argument("--arch", default="resnet18", help="re-id backbone (resnet18, or smallcnn on a busy CPU)")
    ap.add_argument("--width", type=int, default=32, help="smallcnn width")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="/tmp/reid_variation")
    ap.add_argument("--sets", default=",".join(SETS), help="training sets to build and compare (IV-refined "
                    "needs IV)")
    args = ap.parse_args()
    chosen = [s.strip() for s in args.sets.split(",") if s.strip()]
    if not chosen or set(chosen) - set(SETS) or ("IV-refined" in chosen and "IV" not in chosen):
        ap.error(f"--sets: expected a comma-separated subset of {','.join(SETS)} (IV-refined needs IV)")
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    times: dict[str, float] = {}
    photos_a, photos_b = split_photos(root)
    t0 = time.perf_counter()
    sets = {}
    for k, name in enumerate(SETS[:5]):
        if name not in chosen:
            continue
        cfg = dict(set_config(name, photos_a), name=f"reid-{name}", seed=100 + k, count=args.ids, views=args.views)
        simreal.render(cfg, root / f"set_{name}", workers=args.workers, progress=False)
        sets[name] = root / f"set_{name}"
    site = site_config(photos_b)
    test = root / "test_site"
    simreal.render(dict(site, name="site-test", seed=900, count=args.test_ids, views=args.views), test,
                   workers=args.workers, progress=False)
    target = root / "target_unlabelled"
    if "IV-refined" in chosen:
        simreal.render(dict(site, name="site-unlabelled", seed=901, count=args.target_ids, views=args.views), target,
                       workers=args.workers, progress=False)
    market = root / "test_market"
    if not market.exists():
        from simreal.datasets.contract import open_dataset
        from simreal.datasets.reid_layouts import export_market1501

        export_market1501(open_dataset(test), market, test_fraction=1.0)
    times[f"render ({len(sets) + 1 + ('IV-refined' in chosen)} sets)"] = time.perf_counter() - t0
    if "IV-refined" in chosen:
        t0 = time.perf_counter()
        simreal.refine(sets["IV"], target, root / "refiner", refiner_config(args.refine_epochs), progress=False)
        simreal.refine.apply(root / "refiner", sets["IV"], root / "set_IV_refined", progress=False)
        sets["IV refined"] = root / "set_IV_refined"
        times["refine (train + apply)"] = time.perf_counter() - t0
    rows = [("baseline: colour histogram, no training", colour_histogram_baseline(market))]
    t0 = time.perf_counter()
    for name, data in sets.items():
        run = root / f"run_{name.replace(' ', '_')}"
        simreal.train(train_config(data, args.steps, args.arch, args.width), run, progress=False)
        m = simreal.evaluate(run, market, root / f"eval_{name.replace(' ', '_')}").metrics
        rows.append((name, m))
    times[f"train + eval ({len(rows) - 1} runs)"] = time.perf_counter() - t0
    n_img = args.ids * args.views
    print(f"\nRe-id on a held-out site ({args.test_ids} identities, {rows[0][1]['num_query']} queries, "
          f"{rows[0][1]['num_gallery']} gallery); training sets of {args.ids} identities x {args.views} views "
          f"({n_img} crops, 64x128), {args.arch} from scratch, {args.steps} steps; chance rank-1 = "
          f"{1 / args.test_ids:.3f}\n")
    print("| training set | rank-1 | rank-5 | rank-10 | mAP |")
    print("|---|---|---|---|---|")
    for name, m in rows:
        print(f"| {name} | {m['rank1']:.3f} | {m['rank5']:.3f} | {m['rank10']:.3f} | {m['mAP']:.3f} |")
    print("\n| stage | seconds |\n|---|---|")
    for k, v in times.items():
        print(f"| {k} | {v:.0f} |")
    print(f"| total | {time.perf_counter() - t_all:.0f} |")
    print(f"load average at the end: {os.getloadavg()}")
    (root / "results.json").write_text(json.dumps({"rows": [[n, m] for n, m in rows], "times": times}, indent=1,
                                                  default=str))


if __name__ == "__main__":
    main()
