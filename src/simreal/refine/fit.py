"""``simreal refine train``: the training loop with run folder, checkpoints, resume, samples and logs.

It runs where a :class:`simreal.runtime.compute.Compute` says (device, precision); under torchrun every
rank trains on its share of each global batch with its networks in DistributedDataParallel, and rank 0
writes the run folder."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.config import COMPUTE_VOLATILE, load_config
from simreal.datasets import Dataset, encode_image
from simreal.datasets.torchdata import step_loader
from simreal.errors import ConfigError, RunError
from simreal.refine.config import RefinerConfig
from simreal.refine.consistency import RunConsistency
from simreal.refine.data import ImageSet, resolve_channels, to_uint8
from simreal.refine.models import RefinerModel, build_model, model_summary
from simreal.refine.run import RUN_KIND
from simreal.refine.select import CheckpointScorer
from simreal.runtime.compute import Compute, compute
from simreal.runtime.distributed import gather_objects, on_main, shard_size, unwrap
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
            "crops.feather", "crops.mask_dilate", "crops.reinsert", "data.workers", "consistency.fid_images",
            "consistency.inception_weights", "consistency.inception_dims",
            *COMPUTE_VOLATILE)
"""Config keys a resumed refiner run may change: they cannot change the trained networks."""


def refiner_modules(model: RefinerModel) -> dict[str, torch.nn.Module]:
    """The networks of a refiner that hold parameters (what a checkpoint stores; unwrapped from DDP)."""
    return {n: unwrap(m) for n, m in model.named_children() if any(True for _ in m.parameters())}


@dataclass
class RefineBatches:
    """Iteration -> this rank's ``(real_a, real_b, mask_a, mask_b)``: a pure, picklable function of the
    iteration (data-loader workers call it ahead of the loop). Domain A is visited in a per-epoch permutation,
    domain B drawn at random; sample j of the global batch is cropped and flipped with its own generator, so a
    rank draws its share without drawing the others'."""

    set_a: ImageSet
    set_b: ImageSet
    seed: int
    batch_size: int
    iterations_per_epoch: int
    shard: tuple[int, int] = (0, 1)

    def _a_items(self, it: int) -> list[int]:
        epoch, k = divmod(it, self.iterations_per_epoch)
        order = sample_rng(self.seed, epoch, stream=11).permutation(len(self.set_a))
        return [int(order[(k * self.batch_size + j) % len(order)]) for j in range(self.batch_size)]

    def _mine(self) -> range:
        rank, world = self.shard
        return range(rank * self.batch_size // world, (rank + 1) * self.batch_size // world)

    def a_items(self, it: int) -> list[int]:
        """This rank's domain-A sample indices of iteration ``it`` (e.g. to look up their labels)."""
        items = self._a_items(it)
        return [items[j] for j in self._mine()]

    def __call__(self, it: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        rng = sample_rng(self.seed, it, stream=12)
        n = self.batch_size
        a_items = self._a_items(it)
        b_items = [int(v) for v in rng.integers(0, len(self.set_b), n)]
        mine = self._mine()
        real_a, mask_a = self.set_a.batch([a_items[j] for j in mine], [sample_rng(self.seed, it, 14, j) for j in mine])
        real_b, mask_b = self.set_b.batch([b_items[j] for j in mine], [sample_rng(self.seed, it, 15, j) for j in mine])
        return real_a, real_b, mask_a, mask_b


def _own_extras(tensors: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """This rank's extra tensors from a checkpoint: its own (``rank<r>/`` names) when the job that wrote it had
    this rank, else rank 0's."""
    mine = {k[len(f"rank{rank}/"):]: v for k, v in tensors.items() if k.startswith(f"rank{rank}/")}
    return mine or {k: v for k, v in tensors.items() if not k.startswith("rank")}


def _all_extras(ctx: Compute, model: RefinerModel) -> dict[str, torch.Tensor]:
    """Every rank's extra tensors (image pools, feature means) for rank 0's checkpoint: rank 0's under their
    names (what a single process reads), rank r's under ``rank<r>/``."""
    own = {k: v.detach().cpu() for k, v in model.extra_tensors().items()}
    everyone = gather_objects(own)
    if everyone is None:
        return {}
    out = dict(everyone[0])
    for r, extras in enumerate(everyone[1:], 1):
        out.update({f"rank{r}/{k}": v for k, v in extras.items()})
    return {**out, **ctx.state_tensors()}


def _load_consistency(cfg: RefinerConfig) -> RunConsistency | None:
    """The frozen task model of ``consistency.run`` (loaded before anything is written: a bad run fails early)."""
    c = cfg.consistency
    if not c.run:
        return None
    return RunConsistency(c.run, c.weight, use_labels=c.use_labels, both_directions=c.both_directions,
                          min_confidence=c.min_confidence)


def _cond_classes(cfg: RefinerConfig, sc: RunConsistency | None) -> int:
    """Classes of the class-conditional discriminators (0: unconditional); needs a classify task model."""
    if not cfg.consistency.conditional_discriminator:
        return 0
    if sc is None or sc.kind != "classify":
        raise ConfigError(f"consistency.conditional_discriminator: {cfg.consistency.run} is a "
                          f"{None if sc is None else sc.kind!r} run; it needs a classify run")
    return int(sc.num_classes or 0)


def _load_inception(cfg: RefinerConfig) -> torch.nn.Module | None:
    """The FID Inception of ``consistency.inception_weights`` (loaded before anything is written)."""
    c = cfg.consistency
    if not c.inception_weights or not c.fid_images:
        return None
    from simreal.nn.inception import load_fid_inception

    return load_fid_inception(c.inception_weights, c.inception_dims)


def _consistency(cfg: RefinerConfig, sc: RunConsistency | None, inception: torch.nn.Module | None,
                 model: RefinerModel, src_ds: Dataset, set_a: ImageSet, set_b: ImageSet, log: Any,
                 ctx: Compute) -> tuple[Any, CheckpointScorer | None]:
    """Attach the semantic-consistency loss (``consistency.weight`` > 0) and build the per-checkpoint scorer
    (``consistency.fid_images`` > 0: task space with a task model, Inception space with its weights); returns
    (labels lookup or None, scorer)."""
    c = cfg.consistency
    labels_of = None
    if sc is not None:
        sc.to(ctx.device)
        if c.weight > 0 or c.conditional_discriminator:
            model.consistency = sc
            labels_of = sc.label_lookup(src_ds, set_a.items)
            log.info("semantic consistency: %s model of %s, weight %g, %s%s", sc.kind, c.run, c.weight,
                     "source labels" if labels_of is not None else "pseudo-labels",
                     ", class-conditional discriminators" if c.conditional_discriminator else "")
    if not c.fid_images or not ctx.is_main or (sc is None and inception is None):
        return labels_of, None
    rng = sample_rng(cfg.train.seed, 0, stream=14)
    n = c.fid_images
    crop_rngs = [sample_rng(cfg.train.seed, 0, 16, j) for j in range(n)]
    src = set_a.batch([int(v) for v in rng.integers(0, len(set_a), n)], crop_rngs)[0]
    real = set_b.batch([int(v) for v in rng.integers(0, len(set_b), n)], crop_rngs)[0]
    scorer = CheckpointScorer(None if sc is None else sc.model, None if sc is None else sc.to_input, ctx.to(src),
                              ctx.to(real), inception=None if inception is None else inception.to(ctx.device))
    log.info("scores of the unrefined source samples: %s",
             " ".join(f"{k}={v:.4g}" for k, v in scorer.baseline.items()))
    return labels_of, scorer


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
    device: str | None = None,
    precision: str | None = None,
) -> RefineResult:
    """Train (or resume) a refiner from ``source`` (synthetic, domain A) to ``target`` (real, domain B).

    ``config`` is a RefinerConfig, a YAML path, a dict or None: the defaults for a new run, the run's own
    config when ``out`` already holds a refiner run. ``device`` and ``precision`` override the config's (a run
    resumes on any device). Under torchrun the processes train data-parallel and rank 0 writes the run."""
    out = Path(out)
    if config is None and (out / RUN_JSON).is_file():
        config = RunStore.open(out, RUN_KIND).config(RefinerConfig)
    ov = dict(overrides or {})
    ov.update({k: v for k, v in (("device", device), ("precision", precision)) if v is not None})
    cfg = load_config(RefinerConfig, config, ov)
    with compute(cfg.device, cfg.precision, cfg.deterministic, channels_last=cfg.channels_last) as ctx:
        return _train(source, target, out, cfg, ctx, progress)


def _train(source: str | Path, target: str | Path, out: Path, cfg: RefinerConfig, ctx: Compute,
           progress: bool) -> RefineResult:
    src_ds, tgt_ds = Dataset.open(source), Dataset.open(target)
    channels = resolve_channels(src_ds, tgt_ds, cfg.data.channels)
    needs_masks = cfg.loss.lambda_mask_identity > 0
    set_a = ImageSet(src_ds, channels, cfg.data, cfg.crops, "source", with_masks=needs_masks)
    set_b = ImageSet(tgt_ds, channels, cfg.data, cfg.crops, "target", with_masks=needs_masks)
    set_a.check_all()
    set_b.check_all()
    sc = _load_consistency(cfg)
    cond_classes = _cond_classes(cfg, sc)  # checked before anything is written
    inception = _load_inception(cfg)
    t = cfg.train
    shard_size(t.batch_size, ctx.dist, "train.batch_size")
    ipe = t.iterations_per_epoch or math.ceil(max(len(set_a), len(set_b)) / t.batch_size)
    store, resumed = on_main(lambda: RunStore.prepare(out, RUN_KIND, cfg, volatile=VOLATILE, info={
        "model": cfg.model, "channels": channels, "source": str(source), "target": str(target),
        "iterations_per_epoch": ipe}))
    store = store if ctx.is_main else store.follower()
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
    model = ctx.place(build_model(cfg, channels, cond_classes))
    model.amp = ctx
    model.train()
    start_epoch = 0
    found = store.latest_checkpoint()
    if found is not None:
        extra = store.load_checkpoint(found, refiner_modules(model), model.optimizers)
        model.load_extra_tensors({k: v.to(ctx.device) for k, v in _own_extras(extra, ctx.dist.rank).items()})
        ctx.load_state_tensors(extra)
        start_epoch = int(found.meta["epoch"])
        log.info("resumed from %s (epoch %d, iteration %d)", found.path.name, start_epoch, found.step)
    for name, net in refiner_modules(model).items():  # gradients averaged over ranks in backward
        setattr(model, name, ctx.wrap(net))
    store.truncate_metrics(start_epoch * ipe, key="iteration")
    log.info(
        "training %s: %d source samples, %d target samples, %d iterations/epoch, epochs %d..%d; params %s; "
        "device %s, precision %s, %d process(es)",
        cfg.model,
        len(set_a),
        len(set_b),
        ipe,
        start_epoch + 1,
        total_epochs,
        model_summary(model),
        ctx.device,
        ctx.precision,
        ctx.dist.world_size,
    )
    labels_of, scorer = _consistency(cfg, sc, inception, model, src_ds, set_a, set_b, log, ctx)
    fixed = set_a.fixed_samples(t.num_samples) if t.num_samples and ctx.is_main else None
    total_iters = total_epochs * ipe
    batches = RefineBatches(set_a, set_b, t.seed, t.batch_size, ipe, (ctx.dist.rank, ctx.dist.world_size))
    loader = iter(step_loader(batches, start_epoch * ipe, total_iters, cfg.data.workers, ctx.pin_memory))
    with make_progress("it", disable=not (progress and ctx.is_main)) as prog:
        task = prog.add_task(f"refine {cfg.model}", total=total_iters, completed=start_epoch * ipe)
        for epoch in range(start_epoch, total_epochs):
            model.set_epoch(epoch)
            window: dict[str, list[torch.Tensor]] = defaultdict(list)
            epoch_sums: dict[str, list[torch.Tensor]] = defaultdict(list)
            tick = time.perf_counter()
            for k in range(ipe):
                it = epoch * ipe + k
                torch.manual_seed(sample_seed(t.seed, it, stream=13))
                real_a, real_b, mask_a, mask_b = (ctx.to(v) for v in next(loader))
                labels = ctx.to(labels_of(batches.a_items(it))) if labels_of is not None else None
                losses = model.train_step(real_a, real_b, mask_a, mask_b, epoch, labels)
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
                        **ctx.mean({n: torch.stack(v).float().mean() for n, v in window.items()}),
                        "it_per_s": n_win / max(now - tick, 1e-9),
                    })
                    tick = now
                    window.clear()
            summary = ctx.mean({n: torch.stack(v).float().mean() for n, v in epoch_sums.items()})
            log.info("epoch %d/%d lr %.3g %s", epoch + 1, total_epochs,
                     next(iter(model.optimizers.values())).param_groups[0]["lr"],
                     " ".join(f"{n}={v:.4f}" for n, v in summary.items()))
            if fixed is not None:
                model.eval()
                with torch.no_grad():
                    grid = sample_grid([c.float().cpu() for c in model.sample_columns(ctx.to(fixed))])
                model.train()
                store.save_sample(f"epoch_{epoch + 1:04d}.png", encode_image(grid))
            if (epoch + 1) % t.checkpoint_every == 0 or epoch + 1 == total_epochs:
                scores: dict[str, float] = {}
                if scorer is not None:
                    model.eval()
                    scores = scorer(model.refine)
                    model.train()
                    store.log_metrics({"iteration": (epoch + 1) * ipe, "epoch": epoch + 1, **scores})
                store.save_checkpoint(
                    (epoch + 1) * ipe, refiner_modules(model), model.optimizers, extra=_all_extras(ctx, model),
                    meta={"epoch": epoch + 1, "iteration": (epoch + 1) * ipe, "model": cfg.model,
                          "channels": channels, "architecture": cfg.architecture(), "losses": summary, **scores},
                    keep=t.keep_checkpoints)
                log.info("checkpoint epoch %d%s", epoch + 1,
                         "".join(f" {k}={v:.4g}" for k, v in scores.items()))
    log.info("done")
    close_logger(log)
    last = store.latest_checkpoint()
    return RefineResult(out, total_epochs, total_iters, None if last is None else last.path)
