"""``simreal refine train``: the training loop with run folder, checkpoints, resume, samples and logs."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.config import load_config
from simreal.datasets import Dataset, encode_image
from simreal.errors import RunError
from simreal.refine.config import RefinerConfig
from simreal.refine.data import ImageSet, resolve_channels, to_uint8
from simreal.refine.models import RefinerModel, build_model, model_summary
from simreal.refine.run import RUN_KIND
from simreal.runtime.progress import close_logger, make_progress
from simreal.runtime.runstore import RUN_JSON, RunStore
from simreal.runtime.seeding import sample_rng, sample_seed


def sample_grid(columns: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Rows = samples, columns = views (e.g. input | refined | cycle) as one uint8 image."""
    n, c, h, w = columns[0].shape
    grid = torch.ones(c, n * h + (n + 1) * pad, len(columns) * w + (len(columns) + 1) * pad)
    for i in range(n):
        for j, col in enumerate(columns):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y : y + h, x : x + w] = col[i].clamp(-1, 1)
    return to_uint8(grid)


VOLATILE = ("train.threads", "train.log_every", "train.num_samples", "train.keep_checkpoints", "data.cache_mb",
            "crops.feather", "crops.mask_dilate", "crops.reinsert", "device")
"""Config keys a resumed refiner run may change: they cannot change the trained networks."""


def refiner_modules(model: RefinerModel) -> dict[str, torch.nn.Module]:
    """The networks of a refiner that hold parameters (what a checkpoint stores)."""
    return {n: m for n, m in model.named_children() if any(True for _ in m.parameters())}


@dataclass(frozen=True)
class RefineResult:
    """What :func:`train` returns: the run folder, its length and its newest checkpoint."""

    run: Path
    epochs: int
    iterations: int
    checkpoint: Path | None


def train(
    source: str | Path,
    target: str | Path,
    out: str | Path,
    config: RefinerConfig | str | Path | dict[str, Any] | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> RefineResult:
    """Train (or resume) a refiner from ``source`` (synthetic, domain A) to ``target`` (real, domain B).

    ``config`` is a RefinerConfig, a YAML path, a dict or None: the defaults for a new run, the run's own
    config when ``out`` already holds a refiner run."""
    out = Path(out)
    if config is None and (out / RUN_JSON).is_file():
        config = RunStore.open(out, RUN_KIND).config(RefinerConfig)
    cfg = load_config(RefinerConfig, config, overrides)
    src_ds, tgt_ds = Dataset.open(source), Dataset.open(target)
    channels = resolve_channels(src_ds, tgt_ds, cfg.data.channels)
    needs_masks = cfg.loss.lambda_mask_identity > 0
    set_a = ImageSet(src_ds, channels, cfg.data, cfg.crops, "source", with_masks=needs_masks)
    set_b = ImageSet(tgt_ds, channels, cfg.data, cfg.crops, "target", with_masks=needs_masks)
    set_a.check_all()
    set_b.check_all()
    t = cfg.train
    ipe = t.iterations_per_epoch or math.ceil(max(len(set_a), len(set_b)) / t.batch_size)
    store, resumed = RunStore.prepare(out, RUN_KIND, cfg, volatile=VOLATILE,
                                      info={"model": cfg.model, "channels": channels, "source": str(source),
                                            "target": str(target), "iterations_per_epoch": ipe})
    if resumed:
        if store.info.get("imported_from"):
            raise RunError(f"{out}: holds an imported generator (no discriminators or optimiser state) that "
                           "cannot be trained further; train into a new --out")
        if int(store.info.get("channels", channels)) != channels:
            raise RunError(f"{out}: run was trained on {store.info['channels']}-channel images, data has {channels}")
        ipe = int(store.info.get("iterations_per_epoch", ipe))
    if t.threads:
        torch.set_num_threads(t.threads)
    total_epochs = t.epochs + t.epochs_decay
    log = store.logger("refine")
    torch.manual_seed(t.seed)
    model = build_model(cfg, channels)
    model.train()
    start_epoch = 0
    found = store.latest_checkpoint()
    if found is not None:
        extra = store.load_checkpoint(found, refiner_modules(model), model.optimizers)
        model.load_extra_tensors(extra)
        start_epoch = int(found.meta["epoch"])
        log.info("resumed from %s (epoch %d, iteration %d)", found.path.name, start_epoch, found.step)
    store.truncate_metrics(start_epoch * ipe, key="iteration")
    log.info(
        "training %s: %d source samples, %d target samples, %d iterations/epoch, epochs %d..%d; params %s",
        cfg.model,
        len(set_a),
        len(set_b),
        ipe,
        start_epoch + 1,
        total_epochs,
        model_summary(model),
    )
    fixed = set_a.fixed_samples(t.num_samples) if t.num_samples else None
    total_iters = total_epochs * ipe
    with make_progress("it", disable=not progress) as prog:
        task = prog.add_task(f"refine {cfg.model}", total=total_iters, completed=start_epoch * ipe)
        for epoch in range(start_epoch, total_epochs):
            model.set_epoch(epoch)
            order = sample_rng(t.seed, epoch, stream=11).permutation(len(set_a))
            window: dict[str, list[float]] = defaultdict(list)
            epoch_sums: dict[str, list[float]] = defaultdict(list)
            tick = time.perf_counter()
            for k in range(ipe):
                it = epoch * ipe + k
                rng = sample_rng(t.seed, it, stream=12)
                torch.manual_seed(sample_seed(t.seed, it, stream=13))
                a_items = [int(order[(k * t.batch_size + j) % len(order)]) for j in range(t.batch_size)]
                b_items = [int(v) for v in rng.integers(0, len(set_b), t.batch_size)]
                real_a, mask_a = set_a.batch(a_items, rng)
                real_b, mask_b = set_b.batch(b_items, rng)
                losses = model.train_step(real_a, real_b, mask_a, mask_b, epoch)
                for name, v in losses.items():
                    window[name].append(v)
                    epoch_sums[name].append(v)
                prog.advance(task)
                if (it + 1) % t.log_every == 0 or k == ipe - 1:
                    now = time.perf_counter()
                    n_win = len(next(iter(window.values())))
                    store.log_metrics({
                        "iteration": it + 1,
                        "epoch": epoch + 1,
                        # the learning rate the optimisers used (not the planned one)
                        "lr": next(iter(model.optimizers.values())).param_groups[0]["lr"],
                        **{n: float(np.mean(v)) for n, v in window.items()},
                        "it_per_s": n_win / max(now - tick, 1e-9),
                    })
                    tick = now
                    window.clear()
            summary = {n: float(np.mean(v)) for n, v in epoch_sums.items()}
            log.info("epoch %d/%d lr %.3g %s", epoch + 1, total_epochs,
                     next(iter(model.optimizers.values())).param_groups[0]["lr"],
                     " ".join(f"{n}={v:.4f}" for n, v in summary.items()))
            if fixed is not None:
                model.eval()
                grid = sample_grid(model.sample_columns(fixed))
                model.train()
                store.save_sample(f"epoch_{epoch + 1:04d}.png", encode_image(grid))
            if (epoch + 1) % t.checkpoint_every == 0 or epoch + 1 == total_epochs:
                store.save_checkpoint(
                    (epoch + 1) * ipe, refiner_modules(model), model.optimizers, extra=model.extra_tensors(),
                    meta={"epoch": epoch + 1, "iteration": (epoch + 1) * ipe, "model": cfg.model,
                          "channels": channels, "architecture": cfg.architecture(), "losses": summary},
                    keep=t.keep_checkpoints)
                log.info("checkpoint epoch %d", epoch + 1)
    log.info("done")
    close_logger(log)
    last = store.latest_checkpoint()
    return RefineResult(out, total_epochs, total_iters, None if last is None else last.path)
