"""``simreal train`` and ``simreal eval`` as functions (``simreal.train``, ``simreal.evaluate``,
``simreal.load_run``): config -> run folder -> report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.adapt.config import TrainConfig
from simreal.adapt.selection import predict_all
from simreal.adapt.trainer import Trainer
from simreal.config import COMPUTE_VOLATILE, load_config
from simreal.datasets.augment import Augmenter
from simreal.datasets.contract import Dataset
from simreal.datasets.torchdata import FolderSource
from simreal.errors import ConfigError, DatasetError, RunError
from simreal.nn.syncbn import convert_sync_batchnorm
from simreal.runtime.compute import Compute, compute
from simreal.runtime.device import resolve_device
from simreal.runtime.distributed import on_main
from simreal.runtime.io import atomic_write_json
from simreal.runtime.progress import close_logger
from simreal.runtime.runstore import RunStore
from simreal.runtime.seeding import seed_everything
from simreal.tasks.base import Task
from simreal.tasks.registry import get_task

BACKGROUND = "background"


def _class_list(ds: Dataset, task: str = "classify") -> list[str]:
    """A domain's classes. For classification, negative images (label 0) form a ``background``
    class, so a rendered dataset with negatives matches a real folder with a ``background/``
    sub-folder."""
    names = list(ds.class_names)
    if task == "classify" and BACKGROUND not in names and any(r.get("label") == 0 for r in ds.images):
        names = [BACKGROUND, *names]
    return names


def _same_classes(a: list[str], b: list[str]) -> bool:
    """Equal up to the implicit background class (one domain may lack negatives)."""
    return [n for n in a if n != BACKGROUND] == [n for n in b if n != BACKGROUND]


def build_data(cfg: TrainConfig) -> tuple[Task, list[tuple[FolderSource, str]], FolderSource | None,
                                          FolderSource | None]:
    """Open every domain, check labels and class lists, and build the task and the sources."""
    opened = [(d, Dataset.open(d.path)) for d in cfg.data.domains]
    labelled = [(d, ds) for d, ds in opened if d.labelled]
    if not labelled:
        raise ConfigError("data.domains: no domain with labelled: true (the task needs labels)")
    ref_cfg, ref = labelled[0]
    classes = _class_list(ref, cfg.task)
    if cfg.task == "classify" and BACKGROUND not in classes and any(
            BACKGROUND in _class_list(ds, cfg.task) for _, ds in labelled):
        classes = [BACKGROUND, *classes]
    task = get_task(cfg.task, len(classes), classes, **task_options(cfg))
    if not classes and task.shared_classes:
        raise DatasetError(f"{ref_cfg.path}: no categories (the task {cfg.task!r} needs labelled classes)")
    ids = [c["id"] for c in ref.categories]
    if hasattr(task, "bind"):
        task.bind(ids)
    for d, ds in opened:
        if d.labelled or ds.categories:
            if ds.categories and task.shared_classes and not _same_classes(_class_list(ds, cfg.task), classes):
                raise DatasetError(f"{d.path}: class list {_class_list(ds, cfg.task)} differs from "
                                   f"{ref_cfg.path}: {classes}")
        if d.labelled:
            task.check_labels(ds, d.path)
    if hasattr(task, "register_domains"):  # re-id: the identity classes of the labelled training domains
        task.register_domains([ds for d, ds in opened if d.labelled])
    size, ch = tuple(cfg.data.image_size), cfg.data.channels
    sources: list[tuple[FolderSource, str]] = []
    val = None
    for i, (d, ds) in enumerate(opened):
        idx = list(range(len(ds)))
        refine = None
        if d.refiner:  # CyCADA: the domain's images pass through a trained refiner as they are loaded
            from simreal.refine.run import image_refiner

            refine = image_refiner(d.refiner, ch, f"data.domains[{i}].refiner")
        if d is ref_cfg and cfg.data.source_val is None and cfg.data.source_val_fraction > 0 and d.role == "source":
            split = _validation_split(task, ds, cfg.data.source_val_fraction, cfg.seed)
            if split is not None:
                idx, val_idx = split
                val = FolderSource(f"{d.name or ds.name}-val", i, ds, size, ch, task.target, True, val_idx,
                                   transform=refine)
        sources.append((FolderSource(d.name or ds.name, i, ds, size, ch, task.target, d.labelled, idx,
                                     transform=refine), d.role))
    if cfg.data.source_val:
        vds = Dataset.open(cfg.data.source_val)
        task.check_labels(vds, cfg.data.source_val)
        val = FolderSource("source-val", 0, vds, size, ch, task.target)
    tval = None
    if cfg.data.target_val:
        if not cfg.selection.allow_target_labels:
            raise ConfigError("data.target_val is set but selection.allow_target_labels is false: target labels "
                              "are not used unless you allow it")
        tds = Dataset.open(cfg.data.target_val)
        task.check_labels(tds, cfg.data.target_val)
        tval = FolderSource("target-val", len(opened), tds, size, ch, task.target)
    if hasattr(task, "wrap_source"):  # e.g. identity-balanced P x K batches for the re-id triplet loss
        sources = [(task.wrap_source(s), r) for s, r in sources]
    if cfg.augment.enabled:  # training batches only: validation sources are never augmented
        for src, _ in sources:
            src.augment = Augmenter(cfg.augment)
    for src, _ in sources:
        if len(src) == 0:
            raise DatasetError(f"domain {src.name}: no images left for training")
    if hasattr(task, "fit_anchors"):  # detect: k-means anchor shapes from the labelled training boxes
        task.fit_anchors([s for s, _ in sources], cfg.seed)
    return task, sources, val, tval


def _validation_split(task: Task, ds: Dataset, fraction: float, seed: int) -> tuple[list[int], list[int]] | None:
    """(train, validation) indices of the first labelled source: the task's own split when it has one
    (re-id holds out identities), else a random ``fraction`` of the images; None when too small."""
    if hasattr(task, "validation_split"):
        return task.validation_split(ds, fraction, seed)
    perm = np.random.default_rng(seed).permutation(len(ds))
    n_val = max(1, int(round(len(ds) * fraction)))
    if len(ds) - n_val < 1:
        return None
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


def task_options(cfg: TrainConfig) -> dict[str, Any]:
    """Task constructor options from the config (segment / reid / detect / instance sections, reid loss weights)."""
    if cfg.task == "segment":
        return {"class_weights": cfg.segment.class_weights}
    if cfg.task == "reid":
        return {"triplet_weight": cfg.method.triplet_weight, "triplet_margin": cfg.method.triplet_margin,
                **cfg.reid.model_dump()}
    if cfg.task == "detect":
        return cfg.detect.model_dump()
    if cfg.task == "instance":
        return cfg.instance.model_dump()
    return {}


def _build(cfg: TrainConfig, task: Task) -> torch.nn.Module:
    return task.build_model(cfg.model.arch, cfg.data.channels, tuple(cfg.data.image_size), width=cfg.model.width,
                            embedding_dim=cfg.model.embedding_dim, base_width=cfg.model.base_width)


def build_model(cfg: TrainConfig, task: Task) -> torch.nn.Module:
    """The task model of ``cfg.model.arch``; ``model.weights`` (torchvision or simreal format) are loaded
    into its registry network, without class-count-dependent heads of another class count; a file holding
    the whole task model (same keys and shapes, e.g. a run's final model) is loaded as it is."""
    model = _build(cfg, task)
    if cfg.model.weights:
        from simreal.nn.registry import model_info
        from simreal.nn.weights import load_into, load_state_dict_file, map_torchvision_keys
        from simreal.registry import resolve
        from simreal.tasks.registry import task_model_family

        info = model_info(cfg.model.arch, task_model_family(cfg.task))
        prefix = model.network_prefix + (info.torchvision_prefix or "")
        state = load_state_dict_file(cfg.model.weights)
        own = model.state_dict()
        if set(state) == set(own) and all(state[k].shape == own[k].shape for k in own):
            # a whole task model of this config (a run's checkpoints/final.safetensors)
            load_into(model, state, cfg.model.weights)
            return model
        if info.key_map:  # e.g. legacy torchvision names
            state = resolve(info.key_map)(state)
        state = map_torchvision_keys(state, prefix)
        heads = tuple(prefix + h + "." for h in info.head)
        # a torchvision head of another class count, or one the model lacks, is not loaded
        skip = tuple(k for k in state if heads and k.startswith(heads)
                     and (k not in own or own[k].shape != state[k].shape))
        optional = tuple(prefix + o + "." for o in info.optional)  # e.g. detection heads of a backbone-only file
        load_into(model, state, cfg.model.weights, skip_prefixes=skip,
                  allow_missing=tuple(k for k in own if not k.startswith(prefix)) + heads + optional)
    return model


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: the run folder, how the model was selected, and summary figures."""

    run: Path
    selection: dict[str, Any]
    summary: dict[str, Any]

    @property
    def report(self) -> Path:
        return self.run / "report.md"

    @property
    def model_path(self) -> Path:
        return self.run / "checkpoints" / "final.safetensors"


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` returns: the report folder and every figure (as in ``metrics.json``)."""

    out: Path
    metrics: dict[str, Any]

    @property
    def report(self) -> Path:
        return self.out / "report.md"


@dataclass(frozen=True)
class LoadedRun:
    """A finished training run, ready to predict: config, task, selected model (eval mode) and metadata."""

    run: Path
    config: TrainConfig
    task: Task
    model: torch.nn.Module
    meta: dict[str, Any]

    def __iter__(self) -> Any:  # (cfg, task, model, meta) = load_run(...)
        return iter((self.config, self.task, self.model, self.meta))


RUN_KIND = "train"
VOLATILE = (*COMPUTE_VOLATILE, "data.workers")  # config keys a resumed run may change (they do not define it)


def train(config: TrainConfig | str | Path | dict[str, Any], out: str | Path, *,
          overrides: dict[str, Any] | None = None, progress: bool = True, device: str | None = None,
          precision: str | None = None) -> TrainResult:
    """Train per ``config`` (a TrainConfig, a YAML path or a dict) into the run folder ``out``; rerunning
    with the same config resumes from the last checkpoint (on any device: ``device`` and ``precision``
    override the config's). Under torchrun each process trains its share of every batch (data parallel)
    and rank 0 writes the run folder; the result is the same as one process's."""
    ov = dict(overrides or {})
    ov.update({k: v for k, v in (("device", device), ("precision", precision)) if v is not None})
    cfg = load_config(TrainConfig, config, ov)
    out = Path(out)
    if (out / "config.yaml").is_file() and not (out / "run.json").is_file():
        raise RunError(f"{out}: a run folder of an older simreal (no run.json); use a new --out")
    with compute(cfg.device, cfg.precision, cfg.deterministic, channels_last=cfg.channels_last) as ctx:
        return _train(cfg, out, ctx, progress)


def _train(cfg: TrainConfig, out: Path, ctx: Compute, progress: bool) -> TrainResult:
    task, sources, val, tval = build_data(cfg)
    seed_everything(cfg.seed)
    model = build_model(cfg, task)
    if cfg.method.levels:  # unknown level names fail before the run folder is touched
        from simreal.adapt.multilevel import resolve_levels

        resolve_levels(cfg.method, model)
    if ctx.dist.active and cfg.optim.sync_batchnorm:
        model = convert_sync_batchnorm(model, ctx.device)
    store, _ = on_main(lambda: RunStore.prepare(out, RUN_KIND, cfg, volatile=VOLATILE))
    store = store if ctx.is_main else store.follower()
    log = store.logger("train")
    ck = store.latest_checkpoint()
    if ck is not None:
        store.truncate_metrics(ck.step)
        log.info("resuming from %s", ck.path.name)
    log.info("task=%s method=%s domains=%s device=%s precision=%s processes=%d", cfg.task, cfg.method.name,
             [s.name for s, _ in sources], ctx.device, ctx.precision, ctx.dist.world_size)
    trainer = Trainer(task, model, sources, cfg.method, cfg.optim, cfg.selection, cfg.seed, val=val, target_val=tval,
                      store=store, checkpoint_every=cfg.checkpoint_every, progress=progress,
                      on_log=lambda r: log.info(json.dumps(r)), keep_checkpoints=cfg.keep_checkpoints, compute=ctx,
                      workers=cfg.data.workers, pretrained=not cfg.method.pretrain)
    result = trainer.fit()
    if not ctx.is_main:  # rank 0 writes the model, summary and report
        close_logger(log)
        return TrainResult(out, result.selection, {})
    meta = {"task": cfg.task, "arch": cfg.model.arch, "classes": task.class_names, "method": cfg.method.name,
            "selection": result.selection, "image_size": list(cfg.data.image_size), "channels": cfg.data.channels,
            "domains": [s.name for s, _ in sources], "task_state": getattr(task, "state", dict)()}
    store.save_model("final", result.model, meta)
    summary: dict[str, Any] = {"selection": result.selection}
    if val is not None:
        summary["source_val_quality"] = task.quality(predict_all(task, result.model, val),
                                                     val.get(list(range(len(val))))[1])
    atomic_write_json(out / "summary.json", summary)
    from simreal.adapt.report import write_train_report

    write_train_report(out, cfg, result.history, summary)
    log.info("done: %s", json.dumps(summary))
    close_logger(log)
    return TrainResult(out, result.selection, summary)


def load_run(run: str | Path, device: str | None = "cpu") -> LoadedRun:
    """The config, task and selected model (eval mode, on ``device``) of a finished training run; the
    checkpoint is device-agnostic (CPU tensors), wherever it was trained."""
    run = Path(run)
    store = RunStore.open(run, RUN_KIND)
    cfg = store.config(TrainConfig)
    state, meta = store.load_model_state("final")
    task = get_task(cfg.task, len(meta["classes"]), meta["classes"], **task_options(cfg),
                    **meta.get("task_state", {}))
    model = _build(cfg, task)
    from simreal.nn.weights import load_into

    load_into(model, state, str(store.model_path("final")))
    model.to(resolve_device(device))
    model.eval()
    return LoadedRun(run, cfg, task, model, meta)


def evaluate(run: str | Path, data: str | Path, out: str | Path | None = None, *,
             device: str | None = "auto") -> EvalResult:
    """Evaluate the run's selected model on the labelled dataset ``data`` (on ``device``); writes report.md,
    metrics.json and plots into ``out`` (default ``RUN/eval/<dataset name>``)."""
    resolve_device(device)  # a device that is absent fails before anything is read
    cfg, task, model, meta = load_run(run, device)
    ds = Dataset.open(data)
    if ds.categories and task.shared_classes and not _same_classes(_class_list(ds, cfg.task), meta["classes"]):
        raise DatasetError(f"{data}: class list {_class_list(ds, cfg.task)} differs from the run's {meta['classes']}")
    task.check_labels(ds, str(data))
    if hasattr(task, "bind"):
        task.bind([c["id"] for c in ds.categories])
    src = FolderSource(ds.name, 0, ds, tuple(cfg.data.image_size), cfg.data.channels, task.target)
    out = Path(out) if out is not None else Path(run) / "eval" / ds.name
    from simreal.adapt.report import write_eval_report

    return EvalResult(out, write_eval_report(out, task, model, src, meta, str(data)))
