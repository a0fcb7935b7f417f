"""The training loop shared by every method, the CLI and the benchmarks.

A run is a list of phases (e.g. ADDA: ``pretrain`` then ``adapt``); a global step counts across
phases. Every batch is a deterministic function of (seed, global step), so a run resumed from a
checkpoint continues exactly as an uninterrupted one would. A :class:`simreal.runtime.compute.Compute`
says where it runs (device, precision, one rank of a data-parallel job: each rank takes its share of
every global batch, only rank 0 evaluates and writes).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
from simreal.adapt.selection import selection_score
from simreal.adapt.steps import PooledFeatures, adda_step, dann_step, supervised_step
from simreal.datasets.torchdata import DomainSource, balanced_batch, step_loader
from simreal.errors import ConfigError
from simreal.nn.grl import grl_coefficient
from simreal.nn.heads import DomainDiscriminator
from simreal.runtime.compute import Compute
from simreal.runtime.distributed import shard_size


@dataclass
class Phase:
    name: str
    kind: str  # "supervised" | "dann" | "adda"
    steps: int
    sources: list[DomainSource]
    lr: float
    target_sources: list[DomainSource] = field(default_factory=list)  # adda


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict[str, Any]]
    selection: dict[str, Any]


def lr_factor(schedule: str, step: int, total: int) -> float:
    p = min(step / max(total, 1), 1.0)
    if schedule == "dann":
        return 1.0 / (1.0 + 10.0 * p) ** 0.75
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0


def plan_phases(method: MethodConfig, optim: OptimConfig, sources: list[tuple[DomainSource, str]]) -> list[Phase]:
    """The phases of ``method`` given (source, role) pairs; raises ConfigError if data are missing."""
    lab_src = [s for s, r in sources if r == "source" and s.labelled]
    lab_all = [s for s, _ in sources if s.labelled]
    tgt = [s for s, r in sources if r == "target"]
    tgt_lab = [s for s in tgt if s.labelled]
    name = method.name
    need = {"source_only": lab_src, "mixed": lab_all, "dann": lab_all, "adda": lab_src, "finetune": lab_src}
    if not need[name]:
        raise ConfigError(f"method {name}: no labelled source domain in data.domains")
    if name == "source_only":
        return [Phase("train", "supervised", optim.steps, lab_src, optim.lr)]
    if name == "mixed":
        return [Phase("train", "supervised", optim.steps, lab_all, optim.lr)]
    if name == "dann":
        if len(sources) < 2:
            raise ConfigError("method dann: needs at least 2 domains in data.domains")
        return [Phase("train", "dann", optim.steps, [s for s, _ in sources], optim.lr)]
    if name == "adda":
        if not tgt:
            raise ConfigError("method adda: needs a domain with role 'target' in data.domains")
        return [Phase("pretrain", "supervised", optim.steps, lab_src, optim.lr),
                Phase("adapt", "adda", method.adda_steps, lab_src, method.adda_lr, tgt)]
    if not tgt_lab:
        raise ConfigError("method finetune: needs a labelled domain with role 'target' in data.domains")
    return [Phase("pretrain", "supervised", optim.steps, lab_src, optim.lr),
            Phase("finetune", "supervised", method.finetune_steps, tgt_lab, optim.lr * method.finetune_lr_factor)]


@dataclass
class PhaseBatches:
    """Step -> this rank's batch (ADDA: source and target batches) of the phase holding the step: a pure,
    picklable function of the step that data-loader workers call ahead of the loop."""

    phases: list[Phase]
    seed: int
    per_domain: int
    shard: tuple[int, int] = (0, 1)

    def __call__(self, g: int) -> Any:
        start = 0
        for ph in self.phases:
            if g < start + ph.steps or ph is self.phases[-1]:
                break
            start += ph.steps
        b = balanced_batch(ph.sources, g, self.seed, self.per_domain, self.shard)
        if ph.kind == "adda":
            return b, balanced_batch(ph.target_sources, g, self.seed, self.per_domain, self.shard)
        return b


class Trainer:
    """Runs the phases of one method; optional ``store`` (a :class:`simreal.runtime.runstore.RunStore`)
    checkpoints and logs."""

    def __init__(
        self, task: Any, model: nn.Module, sources: list[tuple[DomainSource, str]], method: MethodConfig,
        optim: OptimConfig, selection: SelectionConfig, seed: int = 0, *, val: DomainSource | None = None,
        target_val: DomainSource | None = None, store: Any = None, checkpoint_every: int = 200,
        progress: bool = True, on_log: Callable[[dict[str, Any]], None] | None = None, pretrained: bool = False,
        keep_checkpoints: int = 2, compute: Compute | None = None, workers: int = 0,
    ) -> None:
        self.task, self.model, self.method, self.optim, self.sel = task, model, method, optim, selection
        self.seed, self.val, self.target_val, self.store = seed, val, target_val, store
        self.checkpoint_every, self.on_log = checkpoint_every, on_log
        self.keep_checkpoints = keep_checkpoints
        self.ctx = compute or Compute()
        self.progress = progress and self.ctx.is_main
        self.workers = workers
        self.model = self.ctx.place(model)
        self.net: nn.Module = self.model  # what training forward passes go through (DDP-wrapped in a job)
        self.disc_net: nn.Module | None = None
        self.feat_net: nn.Module | None = None
        self.sources = sources
        self.phases = plan_phases(method, optim, sources)
        if pretrained:  # the model is already trained on the sources: skip a "pretrain" phase
            self.phases = [p for p in self.phases if p.name != "pretrain"] or self.phases
        self.total = sum(p.steps for p in self.phases)
        self.num_domains = len(self.phases[-1].sources)
        self.target_unlab = next((s for s, r in sources if r == "target"), None)
        self._check_selection()
        self._check_shards()
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"step": None, "score": None}
        self._best_state: dict[str, torch.Tensor] | None = None
        self.src_model: nn.Module | None = None
        self.disc: nn.Module | None = None

    # --------------------------------------------------------------- setup
    def _check_selection(self) -> None:
        pol = self.sel.policy
        if pol == "target_val":
            if not self.sel.allow_target_labels:
                raise ConfigError("selection.policy target_val uses target labels: set selection.allow_target_labels: "
                                  "true to allow this (oracle) selection")
            if self.target_val is None:
                raise ConfigError("selection.policy target_val: no labelled target validation data (data.target_val)")
        if pol in ("source_val", "iwv") and self.val is None:
            raise ConfigError(f"selection.policy {pol}: no labelled source validation data")
        if pol in ("iwv", "snd", "im") and self.target_unlab is None:
            raise ConfigError(f"selection.policy {pol}: needs a domain with role 'target' (unlabelled target "
                              "images)")
        if pol in ("snd", "im") and self.task.name != "classify":
            raise ConfigError(f"selection.policy {pol}: scores class probabilities, which task '{self.task.name}' does "
                              "not predict per image (use iwv or source_val)")

    def _check_shards(self) -> None:
        """Each rank takes 1/N of ``optim.batch_per_domain``; identity groups (P x K) must not be split."""
        own = shard_size(self.optim.batch_per_domain, self.ctx.dist, "optim.batch_per_domain")
        k = max((int(getattr(s, "k", 1)) for p in self.phases for s in p.sources + p.target_sources), default=1)
        if self.ctx.dist.active and own % k:
            raise ConfigError(f"optim.batch_per_domain: each of the {self.ctx.dist.world_size} processes takes {own} "
                              f"images per domain, not a multiple of the {k} images per identity (P x K batches)")

    def _phase_at(self, step: int) -> tuple[int, int]:
        start = 0
        for i, p in enumerate(self.phases):
            if step < start + p.steps:
                return i, step - start
            start += p.steps
        return len(self.phases) - 1, self.phases[-1].steps

    def _enter_phase(self, i: int) -> None:
        """Build discriminators/optimisers of phase ``i`` (model weights as they are now)."""
        ph = self.phases[i]
        self.phase_index = i
        decay = self.optim.weight_decay
        dev = self.ctx.device
        self.net, self.disc_net, self.feat_net = self.model, None, None  # drop the last phase's DDP wrappers
        if ph.kind == "adda":
            self.src_model = copy.deepcopy(self.model).eval()
            for p in self.src_model.parameters():
                p.requires_grad_(False)
            self.disc = DomainDiscriminator(self.model.feature_dim, 2, tuple(self.method.disc_hidden)).to(dev)
            enc_params = [p for n, p in self.model.named_parameters()
                          if not any(p is q for q in self.model.head_parameters())]
            self.opt = torch.optim.Adam(enc_params, lr=ph.lr, betas=(0.5, 0.999))
            self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=ph.lr, betas=(0.5, 0.999))
            # the features need no head (nor, for dense tasks, the decoder): DDP must expect unused parameters
            self.feat_net = self.ctx.wrap(PooledFeatures(self.model), find_unused_parameters=True)
            self.disc_net = self.ctx.wrap(self.disc)
            return
        if ph.kind == "dann":
            if self.method.levels:  # multi-level adaptation (its own module)
                from simreal.adapt.multilevel import build_multilevel

                self.disc = self.ctx.place(build_multilevel(self.method, self.model, self.task, ph.sources, self.seed))
            else:
                self.disc = DomainDiscriminator(self.model.feature_dim, len(ph.sources),
                                                tuple(self.method.disc_hidden)).to(dev)
            params = list(self.model.parameters()) + list(self.disc.parameters())
            self.disc_net = self.ctx.wrap(self.disc)
        else:
            if ph.name == "finetune":
                self.model.reset_head()
            params = list(self.model.parameters())
        self.net = self.ctx.wrap(self.model, getattr(self.task, "ddp_find_unused_parameters", False))
        self.opt = torch.optim.AdamW(params, lr=ph.lr, weight_decay=decay) if decay else \
            torch.optim.Adam(params, lr=ph.lr)
        self.opt_d = None

    def modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"model": self.model}
        if self.disc is not None:
            mods["disc"] = self.disc
        if self.src_model is not None:
            mods["src_model"] = self.src_model
        return mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {k: v for k, v in (("opt", self.opt), ("opt_d", self.opt_d)) if v is not None}

    # --------------------------------------------------------------- loop
    def fit(self) -> FitResult:
        start = 0
        self._enter_phase(0)
        if self.store is not None:
            ck = self.store.latest_checkpoint()
            if ck is not None:
                start = ck.step
                pi, _ = self._phase_at(start)
                for j in range(1, pi + 1):
                    self._enter_phase(j)  # the checkpoint then restores every module of that phase
                extra = self.store.load_checkpoint(ck, self.modules(), self.optimizers(), map_location="cpu")
                self.ctx.load_state_tensors(extra)
                self.best = ck.meta.get("best", self.best)
                if self.store.has_model("best") and self.ctx.is_main:
                    self._best_state = self.store.load_model_state("best")[0]
                self.history = self.store.read_metrics()
        self._loop(start)
        return self._finish()

    def _loop(self, start: int) -> None:
        from simreal.runtime.progress import make_progress

        ctx = self.ctx
        t0, n_images = time.perf_counter(), 0
        shard = (ctx.dist.rank, ctx.dist.world_size)
        batches = PhaseBatches(self.phases, self.seed, self.optim.batch_per_domain, shard)
        loader = step_loader(batches, start, self.total, self.workers, ctx.pin_memory)
        with make_progress("step", disable=not self.progress) as prog:
            bar = prog.add_task(f"{self.method.name}", total=self.total, completed=start) if self.progress else None
            for g, item in zip(range(start, self.total), loader, strict=True):
                pi, local = self._phase_at(g)
                if pi != self.phase_index:
                    self._enter_phase(pi)
                ph = self.phases[pi]
                f = lr_factor(self.optim.lr_schedule, local, ph.steps)
                for o in self.optimizers().values():
                    for pg in o.param_groups:
                        pg["lr"] = ph.lr * f
                if ph.kind == "adda" and local == 0 and ctx.is_main:
                    # the unadapted target encoder (= the source model) is a selection candidate: ADDA then cannot
                    # select a collapsed encoder when the unadapted one scores better on the label-free criterion
                    self._evaluate(g)
                self.model.train()
                if ph.kind == "adda":
                    bs, bt = ctx.to(item[0]), ctx.to(item[1])
                    assert self.src_model is not None and self.disc_net is not None and self.opt_d is not None
                    rec = adda_step(self.src_model, self.model, self.disc_net, bs.x, bt.x, self.opt_d, self.opt, ctx,
                                    tgt_features=self.feat_net)
                    n = len(bs.x) + len(bt.x)
                elif ph.kind == "dann":
                    b = ctx.to(item)
                    assert self.disc_net is not None
                    if self.method.levels:  # hooks on the inner model; plain backward (no AMP scaler yet)
                        from simreal.adapt.multilevel import multilevel_step

                        rec = multilevel_step(self.model, self.disc, self.task, b, local, ph.steps, self.opt)
                    else:
                        alpha = grl_coefficient(local, ph.steps, self.method.schedule, self.method.alpha,
                                                self.method.gamma)
                        rec = dann_step(self.net, self.disc_net, self.task, b, alpha, self.opt, ctx)
                    n = len(b.x)
                else:
                    b = ctx.to(item)
                    rec = supervised_step(self.net, self.task, b, self.opt, ctx)
                    n = len(b.x)
                n_images += n * ctx.dist.world_size
                step = g + 1
                last_phase = pi == len(self.phases) - 1
                if step % 20 == 0 or step == self.total:
                    # the learning rate the optimiser actually used (not the planned one); losses averaged over ranks
                    rec = {"step": step, "phase": ph.name, "lr": self.opt.param_groups[0]["lr"],
                           "images_per_s": n_images / max(time.perf_counter() - t0, 1e-9), **ctx.mean(rec)}
                    self._log(rec)
                if ctx.is_main and (last_phase and (local + 1) % self.sel.eval_every == 0 or step == self.total):
                    self._evaluate(step)
                if self.store is not None and (step % self.checkpoint_every == 0 or step == self.total):
                    self.store.save_checkpoint(step, self.modules(), self.optimizers(), extra=ctx.state_tensors(),
                                               meta={"best": self.best, "phase": ph.name},
                                               keep=self.keep_checkpoints)
                if bar is not None:
                    prog.advance(bar, 1)

    def _log(self, rec: dict[str, Any]) -> None:
        self.history.append(rec)
        if self.store is not None:
            self.store.log_metrics(rec)
        if self.on_log is not None:
            self.on_log(rec)

    def _evaluate(self, step: int) -> None:
        pol = self.sel.policy
        score = selection_score(pol, self.task, self.model, self.val, self.target_unlab, self.target_val)
        rec: dict[str, Any] = {"step": step, "phase": self.phases[self.phase_index].name, "eval": True}
        if self.val is not None and pol != "source_val":
            rec["source_val"] = selection_score("source_val", self.task, self.model, self.val, None, None)
        if score is not None:
            rec[f"select/{pol}"] = score
        self._log(rec)
        if score is None:
            return
        if self.best["score"] is None or score > self.best["score"]:
            self.best = {"step": step, "score": score}
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if self.store is not None:
                self.store.save_model("best", self.model, {"step": step, "score": score, "policy": pol})

    def _finish(self) -> FitResult:
        pol = self.sel.policy
        sel = {"policy": pol, "uses_target_labels": pol == "target_val", "step": self.total, "score": None}
        if pol != "last" and self._best_state is not None:
            self.model.load_state_dict(self._best_state)
            sel.update(step=self.best["step"], score=self.best["score"])
        self.model.eval()
        return FitResult(self.model, self.history, sel)
