"""The rare-object benchmark (the paper's Figure 2, CPU-sized, every real image real).

Three architectures (a ResNet classifier, a U-Net with a ResNet encoder, Mask R-CNN with a ResNet +
FPN backbone; the same slim ResNet-18 everywhere) are trained on three domains drawn equally per batch:
low-fidelity renders, high-fidelity renders (both with labelled rare digits) and real canvases of the
*other* digits (labelled nuisance classes). Rows per architecture:

* ``synthetic + real nuisance``: balanced mixing of the three labelled domains (method ``mixed``);
* ``+ layer-4 DANN``: plus one 3-domain discriminator (MLP 512-256-3 on pooled layer-4 features, GRL
  coefficient ``alpha``), the paper's setting;
* ``+ multi-level DANN``: discriminators at several levels (per architecture, see :data:`MULTI_LEVELS`);
* ``oracle``: the first row with real canvases whose rare digits are labelled.

Score of "contains the rare digit" on the real test canvases: softmax probability (classifier), mean
of the top 5 % pixel probabilities (U-Net), highest probability after NMS (Mask R-CNN); ROC-AUC per
seed, and for Mask R-CNN the rare class's COCO box/mask AP. Model selection uses no target labels
(``last``: the model after a fixed number of steps). Rows run in a process pool, one thread each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simreal.bench.rare_object_data import DIGITS, RareObjectData, write_seed
from simreal.bench.rare_object_pretrain import PretrainConfig

ARCHS = ("classifier", "unet", "maskrcnn")
ROWS = ("synthetic + real nuisance", "+ layer-4 DANN", "+ multi-level DANN", "oracle (real rare labelled)")
ARCH_NAMES = {"classifier": "resnet18", "unet": "unet_resnet18", "maskrcnn": "maskrcnn_resnet18_fpn"}
ARCH_TITLES = {"classifier": "classifier (ResNet-18)", "unet": "U-Net (ResNet-18 encoder)",
               "maskrcnn": "Mask R-CNN (ResNet-18 FPN)"}
MULTI_LEVELS: dict[str, dict[str, Any]] = {
    "classifier": {"levels": [{"name": "layer2"}, {"name": "layer3"}, {"name": "layer4", "discriminator": "mlp"}]},
    "unet": {"levels": [{"name": "layer3"}, {"name": "layer4", "discriminator": "mlp"}, {"name": "dec3"},
                        {"name": "output", "weight": 0.5}]},
    "maskrcnn": {"levels": [{"name": "layer4", "discriminator": "mlp"}, {"name": "p3"}, {"name": "p4"},
                            {"name": "roi", "hidden": [256, 128]}],
                 "consistency": {"image": "p3", "instance": "roi", "weight": 0.1}},
}
# small Mask R-CNN for 96 px canvases of 10-34 px digits (P3-P6: the stride-4 level is dropped)
MASKRCNN_OPTIONS: dict[str, Any] = {
    "returned_layers": [2, 3, 4], "fpn_channels": 64,
    "anchor_sizes": [[12.0, 20.0], [28.0, 40.0], [56.0, 80.0], [112.0, 160.0]],
    "representation_size": 256, "mask_layers": [64, 64], "mask_dim_reduced": 64, "canonical_scale": 56.0,
    "canonical_level": 4, "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 150,
    "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100, "rpn_batch_size_per_image": 128,
    "box_batch_size_per_image": 64, "box_detections_per_img": 30, "unlabelled_rois": 32, "samples": 0}


@dataclass
class RareObjectConfig:
    """Everything one table depends on (defaults: the published table)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    data: RareObjectData = field(default_factory=RareObjectData)
    image_size: int = 96
    base_width: int = 16
    archs: tuple[str, ...] = ARCHS
    rows: tuple[str, ...] = ROWS
    steps: dict[str, int] = field(default_factory=lambda: {"classifier": 500, "unet": 300, "maskrcnn": 300})
    batch: dict[str, int] = field(default_factory=lambda: {"classifier": 16, "unet": 8, "maskrcnn": 4})
    lr: dict[str, float] = field(default_factory=lambda: {"classifier": 2e-3, "unet": 2e-3, "maskrcnn": 2e-3})
    alpha: float = 0.1
    channels_last: bool = True  # NHWC convolutions: 1.2-1.5x faster on the CPU, the same rows to float rounding
    workers: int = 2
    pretrain: PretrainConfig | None = field(default_factory=PretrainConfig)


def quick_config() -> RareObjectConfig:
    """Tiny sizes that check the whole pipeline in a minute (not a result)."""
    return RareObjectConfig(data=RareObjectData(n_real_train=24, n_real_test=24, n_synthetic=24),
                            steps={"classifier": 6, "unet": 4, "maskrcnn": 4}, batch={"classifier": 4, "unet": 2,
                                                                                    "maskrcnn": 2},
                            pretrain=PretrainConfig(crops=200, steps=5, batch=16))


def _sources(task: Any, arch: str, folders: dict[str, Path], size: int, real: str) -> tuple[list[Any], Any]:
    from simreal.datasets.contract import Dataset
    from simreal.datasets.torchdata import FolderSource

    rare_id = DIGITS.index(str(RareObjectData().rare)) + 1

    def contains_rare(ds: Any, rec: dict[str, Any], _size: tuple[int, int]) -> int:
        return int(any(a["category_id"] == rare_id for a in ds.anns(rec)))

    target = contains_rare if arch == "classifier" else task.target
    names = ("low", "high", real)
    sources = [(FolderSource(n, i, Dataset.open(folders[n]), (size, size), 3, target), "source" if i < 2 else
                "target") for i, n in enumerate(names)]
    test = FolderSource("real_test", 0, Dataset.open(folders["real_test"]), (size, size), 3, target)
    return sources, test


def _task(arch: str) -> Any:
    from simreal.tasks.registry import get_task

    if arch == "classifier":
        return get_task("classify", 2, ["background", str(RareObjectData().rare)])
    task = get_task("segment" if arch == "unet" else "instance", len(DIGITS), list(DIGITS),
                    **(MASKRCNN_OPTIONS if arch == "maskrcnn" else {}))
    if hasattr(task, "bind"):
        task.bind(list(range(1, len(DIGITS) + 1)))
    return task


def _method(arch: str, row: str, alpha: float) -> Any:
    from simreal.adapt.config import MethodConfig

    if row == ROWS[1]:
        return MethodConfig(name="dann", alpha=alpha, schedule="constant",
                            levels=[{"name": "layer4", "discriminator": "mlp", "hidden": [512, 256]}])
    if row == ROWS[2]:
        return MethodConfig(name="dann", alpha=alpha, schedule="constant", **MULTI_LEVELS[arch])
    return MethodConfig(name="mixed")


def rare_scores(arch: str, task: Any, preds: list[dict[str, Any]]) -> np.ndarray:
    """The image-level "contains the rare digit" score of each test image."""
    rare = RareObjectData().rare
    if arch == "classifier":
        return np.concatenate([p["prob"][:, 1] for p in preds])
    if arch == "unet":
        return np.concatenate([p["prob"][:, rare] for p in preds])
    return np.concatenate([p["image_score"][:, rare] for p in preds])


def run_row(spec: dict[str, Any]) -> dict[str, Any]:
    """Train and score one (architecture, row, seed); the process pool's unit of work."""
    import torch

    from simreal.adapt.config import OptimConfig, SelectionConfig
    from simreal.adapt.selection import all_targets, predict_all
    from simreal.adapt.trainer import Trainer
    from simreal.metrics.ranking import roc_curve
    from simreal.runtime.compute import Compute
    from simreal.runtime.seeding import seed_everything

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    arch, row, seed = spec["arch"], spec["row"], spec["seed"]
    folders = {k: Path(v) for k, v in spec["folders"].items()}
    task = _task(arch)
    real = "real_oracle" if row == ROWS[3] else "real_train"
    sources, test = _sources(task, arch, folders, spec["image_size"], real)
    if hasattr(task, "fit_anchors"):
        task.fit_anchors([s for s, _ in sources], seed)
    seed_everything(seed)
    model = task.build_model(ARCH_NAMES[arch], 3, (spec["image_size"],) * 2, base_width=spec["base_width"])
    if spec.get("backbone"):
        from simreal.bench.rare_object_pretrain import load_backbone

        load_backbone(model, arch, Path(spec["backbone"]))
    optim = OptimConfig(steps=spec["steps"], batch_per_domain=spec["batch"], lr=spec["lr"], weight_decay=1e-4,
                        lr_schedule="cosine")
    trainer = Trainer(task, model, sources, _method(arch, row, spec["alpha"]), optim,
                      SelectionConfig(policy="last", eval_every=spec["steps"]), seed, progress=False,
                      compute=Compute.create("cpu", channels_last=spec.get("channels_last", False)))
    model = trainer.fit().model
    preds = predict_all(task, model, test, batch_size=32)
    targets = all_targets(test)
    score = rare_scores(arch, task, preds)
    has_rare = _has_rare(test)
    _, _, auc = roc_curve(has_rare, score)
    out = {"arch": arch, "row": row, "seed": seed, "auc": float(auc), "train_s": time.perf_counter() - t0,
           "n_test": len(has_rare), "test_positives": int(has_rare.sum())}
    hist = [r for r in trainer.history if "domain_loss" in r]
    if hist:
        out["final_domain_loss"] = hist[-1]["domain_loss"]
    if arch == "maskrcnn":
        out.update(_rare_ap(task, preds, targets))
    return out


def _has_rare(test: Any) -> np.ndarray:
    rare_id = DIGITS.index(str(RareObjectData().rare)) + 1
    ds = test.dataset
    return np.array([int(any(a["category_id"] == rare_id for a in ds.anns(ds.record(i)))) for i in test.indices])


def _rare_ap(task: Any, preds: list[dict[str, Any]], targets: list[Any]) -> dict[str, float | None]:
    from simreal.metrics.detection import coco_evaluator, coco_per_class
    from simreal.tasks.instance_eval import coco_inputs

    gt, bbox, segm = coco_inputs(task, preds, targets)
    rare_cat = DIGITS.index(str(RareObjectData().rare)) + 1
    out: dict[str, float | None] = {}
    for kind, res in (("bbox", bbox), ("segm", segm)):
        ev = coco_evaluator(gt, res, kind)
        pc = coco_per_class(ev).get(rare_cat, {}) if ev is not None else {}
        out[f"rare_{kind}_ap"], out[f"rare_{kind}_ap50"] = pc.get("AP", 0.0), pc.get("AP50", 0.0)
    return out


def _write_seed_task(spec: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in write_seed(Path(spec["root"]), spec["seed"], RareObjectData(**spec["data"])).items()}


def run_benchmark(cfg: RareObjectConfig, out: Path, log: Callable[[str], None] = print,
                  progress: bool = True) -> dict[str, Any]:
    """Data for every seed, then every (architecture, row, seed) in a process pool; results.json in ``out``
    (rewritten after every row with ``complete: false``, so an interrupted run keeps its finished rows, and a
    rerun with the same configuration into the same ``out`` trains only the rows still missing)."""
    from simreal.runtime.executors import map_tasks
    from simreal.runtime.io import atomic_write_json
    from simreal.runtime.progress import make_progress

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data_specs = [{"root": str(out / "data"), "seed": s, "data": asdict(cfg.data)} for s in cfg.seeds]
    folders: dict[int, dict[str, str]] = {}
    for spec, res, err in map_tasks(_write_seed_task, data_specs, "local", min(cfg.workers, len(data_specs))):
        if err:
            raise RuntimeError(f"rare-object data for seed {spec['seed']}: {err}")
        folders[spec["seed"]] = res
    log(f"data: {len(cfg.seeds)} seeds in {time.perf_counter() - t0:.0f} s")
    backbone = None
    if cfg.pretrain is not None:
        from simreal.bench.rare_object_pretrain import pretrained_backbone

        if cfg.pretrain.base_width != cfg.base_width:
            from simreal.errors import ConfigError

            raise ConfigError(f"rare-object: pretrain.base_width {cfg.pretrain.base_width} differs from the models' "
                              f"base_width {cfg.base_width}")
        t1 = time.perf_counter()
        backbone = str(pretrained_backbone(cfg.pretrain, log))
        log(f"backbone: {backbone} ({time.perf_counter() - t1:.0f} s)")
    specs = [{"arch": a, "row": r, "seed": s, "folders": folders[s], "image_size": cfg.image_size,
              "base_width": cfg.base_width, "steps": cfg.steps[a], "batch": cfg.batch[a], "lr": cfg.lr[a],
              "alpha": cfg.alpha, "backbone": backbone, "channels_last": cfg.channels_last}
             for a in reversed(cfg.archs) for r in cfg.rows
             for s in cfg.seeds]
    config = _jsonable(asdict(cfg))
    results, earlier_s = _finished_rows(out / "results.json", config)
    t0 -= earlier_s  # wall time summed over the interrupted runs
    done = {(r["arch"], r["row"], r["seed"]) for r in results}
    if done:
        log(f"resuming: {len(done)} of {len(specs)} rows already in {out / 'results.json'}")
    specs = [s for s in specs if (s["arch"], s["row"], s["seed"]) not in done]
    with make_progress("run", disable=not progress) as prog:
        bar = prog.add_task("rare-object", total=len(specs)) if progress else None
        for spec, res, err in map_tasks(run_row, specs, "local", cfg.workers):
            if err:
                raise RuntimeError(f"rare-object {spec['arch']} / {spec['row']} / seed {spec['seed']}: {err}")
            results.append(res)
            atomic_write_json(out / "results.json", {"config": config, "results": results,
                                                     "wall_s": time.perf_counter() - t0, "complete": False})
            log(f"{res['arch']:<10} {res['row']:<28} seed {res['seed']}: AUC {res['auc']:.3f} "
                f"({res['train_s']:.0f} s)")
            if bar is not None:
                prog.advance(bar, 1)
    wall = time.perf_counter() - t0
    summary = {"config": config, "results": results, "wall_s": wall, "complete": True}
    atomic_write_json(out / "results.json", summary)
    return summary


def _finished_rows(path: Path, config: Any) -> tuple[list[dict[str, Any]], float]:
    """The rows and wall time of an earlier run into the same folder with the same configuration."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return [], 0.0
    same = {k: v for k, v in old.get("config", {}).items() if k != "workers"} == {
        k: v for k, v in config.items() if k != "workers"}  # the number of processes does not change a row
    if not same or not old.get("results"):
        return [], 0.0
    return list(old["results"]), float(old.get("wall_s", 0.0))


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


def _ms(vals: list[float]) -> str:
    a = 100 * np.asarray(vals, dtype=np.float64)
    return f"{a.mean():.1f} ± {a.std():.1f}"


def format_table(summary: dict[str, Any]) -> str:
    """The markdown table (ROC-AUC in %, mean ± std over seeds; Mask R-CNN rare-class AP) and the targets."""
    res = summary["results"]
    cfg = summary["config"]
    seeds = cfg["seeds"]
    lines = [f"| architecture | row | ROC-AUC \"contains a {cfg['data']['rare']}\" (%, {len(seeds)} seeds) | "
             "rare box AP50 | rare mask AP50 | rare mask AP |", "|---|---|---|---|---|---|"]
    table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in res:
        table.setdefault((r["arch"], r["row"]), []).append(r)
    for arch in cfg["archs"]:
        for row in cfg["rows"]:
            rs = table.get((arch, row), [])
            if not rs:
                continue
            ap = ["", "", ""]
            if arch == "maskrcnn":
                ap = [_ms([x.get(k) or 0.0 for x in rs]) for k in ("rare_bbox_ap50", "rare_segm_ap50", "rare_segm_ap")]
            lines.append(f"| {ARCH_TITLES[arch]} | {row} | {_ms([x['auc'] for x in rs])} | " + " | ".join(ap) + " |")
    lines += ["", "Model selection: `last` (fixed steps; no target labels). "
              f"Wall time: {summary['wall_s'] / 60:.1f} min with {cfg['workers']} worker processes."]
    if summary.get("complete") is False:
        lines.append("**Incomplete run**: only the rows above finished.")
    lines += ["", *targets_report(summary)]
    return "\n".join(lines)


def targets_report(summary: dict[str, Any]) -> list[str]:
    """Whether the issue's targets were met, with the numbers: an adapted row >= 3 AUC points above the
    synthetic row for every architecture; multi-level above layer-4 for Mask R-CNN."""
    res = summary["results"]

    def mean(arch: str, row: str) -> float | None:
        v = [r["auc"] for r in res if r["arch"] == arch and r["row"] == row]
        return 100 * float(np.mean(v)) if v else None

    lines = ["Targets:"]
    for arch in summary["config"]["archs"]:
        base = mean(arch, ROWS[0])
        ad = {row: mean(arch, row) for row in ROWS[1:3]}
        if base is None or any(v is None for v in ad.values()):
            continue
        best_row = max(ad, key=lambda k: ad[k])  # type: ignore[arg-type, return-value]
        gain = ad[best_row] - base  # type: ignore[operator]
        lines.append(f"- {ARCH_TITLES[arch]}: best adapted row '{best_row}' {gain:+.1f} AUC points over "
                     f"'{ROWS[0]}' ({'met' if gain >= 3 else 'NOT met'}, target +3.0)")
    m4, mm = mean("maskrcnn", ROWS[1]), mean("maskrcnn", ROWS[2])
    if m4 is not None and mm is not None:
        lines.append(f"- Mask R-CNN: multi-level {mm:.1f} vs layer-4 {m4:.1f} AUC "
                     f"({'met' if mm > m4 else 'NOT met'}: multi-level should be higher)")
    return lines
