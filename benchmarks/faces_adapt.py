"""Faces adaptation benchmark: rendered source identities -> rendered target identities (children,
another skin-tone range, warm low side light, closer noisier camera; configs/faces/render_*.yaml).

Methods (configs/train/faces_adda.yaml, model selection on source validation only - no target
labels): source-only, ADDA, DANN, fine-tune on 5 labelled target chips per class. The target's
frames are split by index: the first 2/3 are the unlabelled target training video (labels removed),
the last 1/3 the labelled test set. Prints accuracy, macro OvR AUC and per-class accuracy (mean
over seeds) and writes results.json. Rendering is cached (resumable) in
``$SIMREAL_CACHE_DIR/faces_bench`` (default ~/.cache/simreal/faces_bench).

    python benchmarks/faces_adapt.py [--seeds 0 1 2] [--source-count 600] [--target-count 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from simreal.adapt.api import evaluate, train
from simreal.config import load_config
from simreal.datasets.contract import Dataset, DatasetWriter
from simreal.faces.render import FaceRenderConfig, render_faces

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("source_only", "adda", "dann", "finetune")


def cache_dir() -> Path:
    base = Path(os.environ.get("SIMREAL_CACHE_DIR", Path.home() / ".cache" / "simreal"))
    return base / "faces_bench"


def subset(src: Dataset, out: Path, keep: list[dict[str, Any]], labelled: bool) -> Path:
    """A dataset of some records of ``src`` (chips hard-linked), labels removed unless ``labelled``."""
    if out.exists():
        shutil.rmtree(out)
    writer = DatasetWriter(out, out.name, src.domain, src.categories if labelled else [],
                           {"parent": str(src.root), **src.info.get("provenance", {})})
    images = []
    for r in keep:
        dst = out / r["file_name"]
        try:
            os.link(src.image_path(r), dst)
        except OSError:
            shutil.copyfile(src.image_path(r), dst)
        images.append({**r, "id": len(images) + 1, "label": r["label"] if labelled else None})
    writer.finalize(images, [])
    return out


def per_class_k(recs: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for lab in sorted({r["label"] for r in recs}):
        group = [r for r in recs if r["label"] == lab]
        out += [group[i] for i in rng.permutation(len(group))[:k]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--source-count", type=int, default=600)
    ap.add_argument("--target-count", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shots", type=int, default=5, help="labelled target chips per class for fine-tuning")
    ap.add_argument("--steps", type=int, default=None, help="override optim.steps (and the adapt/fine-tune steps)")
    args = ap.parse_args()
    base = cache_dir()
    load = os.getloadavg()
    t0 = time.perf_counter()
    src_dir, tgt_dir = base / "render_source", base / "render_target"
    for cfg_file, out, n in ((ROOT / "configs/faces/render_source.yaml", src_dir, args.source_count),
                             (ROOT / "configs/faces/render_target.yaml", tgt_dir, args.target_count)):
        s = render_faces(load_config(FaceRenderConfig, cfg_file, {"count": n}), out, args.workers, quiet=True)
        print(f"{out.name}: {s.chips} chips / {s.frames} frames ({s.missed} without a detected face) "
              f"in {s.seconds:.0f}s")
    t_render = time.perf_counter() - t0
    tgt = Dataset.open(tgt_dir)
    recs = sorted(tgt.images, key=lambda r: r["sample_index"])
    cut = int(round(args.target_count * 2 / 3))
    train_recs = [r for r in recs if r["sample_index"] < cut]
    test_recs = [r for r in recs if r["sample_index"] >= cut]
    tgt_unlab = subset(tgt, base / "target_unlabelled", train_recs, labelled=False)
    tgt_test = subset(tgt, base / "target_test", test_recs, labelled=True)
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    for seed in args.seeds:
        shots = subset(tgt, base / f"target_{args.shots}shot_s{seed}", per_class_k(train_recs, args.shots, seed), True)
        for method in args.methods:
            run = base / "runs" / f"{method}_s{seed}"
            if run.exists():
                shutil.rmtree(run)
            domains = [{"path": str(src_dir), "name": "rendered", "role": "source"},
                       {"path": str(tgt_unlab), "name": "target", "role": "target", "labelled": False}]
            if method == "finetune":
                domains.append({"path": str(shots), "name": "target-5shot", "role": "target", "labelled": True})
            tr0 = time.perf_counter()
            over: dict[str, Any] = {"seed": seed, "method.name": method, "data.domains": domains}
            if args.steps:
                over.update({"optim.steps": args.steps, "method.adda_steps": args.steps,
                             "method.finetune_steps": args.steps, "selection.eval_every": max(1, args.steps // 4),
                             "checkpoint_every": args.steps})
            train(ROOT / "configs/train/faces_adda.yaml", run, over, progress=False)
            res = evaluate(run, tgt_test)
            res["train_s"] = time.perf_counter() - tr0
            results[method].append(res)
            print(f"seed {seed} {method:12s} accuracy {res['accuracy']:.3f}  macro OvR AUC "
                  f"{res.get('roc_auc_ovr_macro', float('nan')):.3f}  ({res['train_s']:.0f}s)", flush=True)
    classes = results[args.methods[0]][0]["class_names"]
    lines = [f"# faces adaptation benchmark ({len(args.seeds)} seeds; target test n={len(test_recs)})", "",
             "| method | accuracy | macro OvR AUC | " + " | ".join(classes) + " |",
             "|---" * (len(classes) + 3) + "|"]
    summary: dict[str, Any] = {}
    for m, rs in results.items():
        acc = np.array([r["accuracy"] for r in rs])
        auc = np.array([r.get("roc_auc_ovr_macro", np.nan) for r in rs])
        pcs = {c: float(np.nanmean([np.nan if r["per_class_accuracy"][c] is None else r["per_class_accuracy"][c]
                                    for r in rs])) for c in classes}
        summary[m] = {"accuracy_mean": float(acc.mean()), "accuracy_sd": float(acc.std()), "auc_mean":
                      float(np.nanmean(auc)), "per_class": pcs, "runs": rs}
        lines.append(f"| {m} | {acc.mean():.3f} ± {acc.std():.3f} | {np.nanmean(auc):.3f} | "
                     + " | ".join(f"{pcs[c]:.2f}" for c in classes) + " |")
    lines += ["", f"rendering {t_render:.0f}s; load average at start {load[0]:.1f} (1 min), "
              f"{os.cpu_count()} cores; total {time.perf_counter() - t0:.0f}s"]
    print("\n".join(lines))
    (base / "results.json").write_text(json.dumps({"summary": summary, "table": lines}, indent=1, default=str))
    (base / "results.md").write_text("\n".join(lines) + "\n")
    print(f"written: {base / 'results.md'}")
    try:
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    except OSError:
        pass


if __name__ == "__main__":
    main()
