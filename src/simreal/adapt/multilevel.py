"""Multi-level domain adaptation: domain discriminators at several named feature levels of one task
model, each behind its own gradient-reversal layer (coefficient and schedule) and with its own loss
weight, k domains (cross-entropy on domain ids), and optionally DA-Faster R-CNN's image/instance
consistency term.

Levels are those a task model names in ``feature_levels()`` (:class:`simreal.tasks.base.FeatureLevel`):
backbone stages, FPN levels, RoI features (instance level, one domain label per RoI: its image's),
U-Net decoder levels, the output space, or the pooled features. Their outputs are captured with
forward hooks during the ordinary forward pass (and the task loss, which runs the detector heads), so
the same mechanism serves the classifier, the U-Net and the detectors. The paper's setting (one MLP
512-256-k on pooled layer-4 features) is ``levels: [{name: layer4, discriminator: mlp}]``.

Per level l with GRL coefficient a_l and weight w_l, the loss is ``w_l CE(D_l(GRL_{a_l}(f_l)), d)``;
the gradient that reaches f_l from it is ``-a_l`` times the gradient arriving at the GRL's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simreal.adapt.config import LevelConfig, MethodConfig
from simreal.datasets.torchdata import Batch, DomainSource, balanced_batch
from simreal.errors import ConfigError
from simreal.nn.grl import grad_reverse, grl_coefficient
from simreal.nn.heads import MLP
from simreal.tasks.base import FeatureLevel


def _get(root: nn.Module, path: str) -> Any:
    obj: Any = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


class LevelTap:
    """Context manager: forward hooks that keep the latest output of each module behind ``levels``."""

    def __init__(self, model: nn.Module, levels: dict[str, FeatureLevel]) -> None:
        self.model, self.levels = model, levels
        self.raw: dict[str, Any] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> LevelTap:
        for path in sorted({lv.module for lv in self.levels.values() if lv.module}):
            def hook(_m: nn.Module, _inp: Any, out: Any, path: str = path) -> None:
                self.raw[path] = out

            self._handles.append(_get(self.model, path).register_forward_hook(hook))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def value(self, name: str, out: Any, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The level's tensor and, for RoI levels, each row's image index."""
        lv = self.levels[name]
        if lv.kind == "output":
            if not isinstance(out, torch.Tensor):
                raise ConfigError(f"method.levels: level {name!r}: the task output is not a tensor")
            return torch.softmax(out, 1), None
        if not lv.module:
            return pooled, None
        if lv.module not in self.raw:
            raise ConfigError(f"method.levels: level {name!r}: module {lv.module} did not run in the forward pass")
        t = self.raw[lv.module]
        if lv.key is not None:
            t = t[lv.key]
        rows = _get(self.model, lv.index) if lv.kind == "roi" and lv.index else None
        return t, rows


class LevelHead(nn.Module):
    """The discriminator of one level: ``mlp`` (global average pool of maps, then an MLP), ``patch`` (1x1
    convs, k logits per location) or ``conv`` (3x3 stride-2 convs + LeakyReLU 0.2, k logits per location)."""

    def __init__(self, kind: str, in_channels: int, num_domains: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.kind = kind
        if kind == "mlp":
            self.net: nn.Module = MLP(in_channels, hidden, num_domains)
        elif kind == "patch":
            layers: list[nn.Module] = []
            c = in_channels
            for h in hidden:
                layers += [nn.Conv2d(c, h, 1), nn.ReLU(inplace=True)]
                c = h
            self.net = nn.Sequential(*layers, nn.Conv2d(c, num_domains, 1))
        elif kind == "conv":
            layers, c = [], in_channels
            for h in hidden:
                layers += [nn.Conv2d(c, h, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
                c = h
            self.net = nn.Sequential(*layers, nn.Conv2d(c, num_domains, 3, padding=1))
        else:  # pragma: no cover - validated by the config
            raise ValueError(kind)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp" and f.dim() == 4:
            f = f.mean((2, 3))
        return self.net(f)


class MultiLevelDiscriminator(nn.Module):
    """One :class:`LevelHead` per configured level (``heads``), with the levels' settings."""

    def __init__(self, levels: dict[str, FeatureLevel], configs: dict[str, LevelConfig], heads: dict[str, LevelHead],
                 method: MethodConfig, num_domains: int) -> None:
        super().__init__()
        self.levels, self.configs, self.method = levels, configs, method
        self.heads = nn.ModuleDict(heads)
        self.num_domains = num_domains

    def coefficient(self, name: str, step: int, total: int) -> float:
        c, m = self.configs[name], self.method
        return grl_coefficient(step, total, c.schedule or m.schedule, m.alpha if c.alpha is None else c.alpha,
                               m.gamma)


def resolve_levels(method: MethodConfig, model: nn.Module) -> dict[str, FeatureLevel]:
    """The model's levels named in ``method.levels``; ConfigError naming the first unknown one."""
    available: dict[str, FeatureLevel] = model.feature_levels() if hasattr(model, "feature_levels") else {}
    out = {}
    for i, lc in enumerate(method.levels or []):
        lv = available.get(lc.name)
        if lv is None:
            raise ConfigError(f"method.levels[{i}].name: unknown feature level {lc.name!r} for this "
                              f"{type(model).__name__} (expected one of {', '.join(available)})")
        vector = lv.kind in ("vector", "roi")
        if vector and lc.discriminator in ("patch", "conv"):
            raise ConfigError(f"method.levels[{i}].discriminator: {lc.discriminator} needs a feature map; level "
                              f"{lc.name!r} is a vector")
        out[lc.name] = lv
    return out


def _kind(lc: LevelConfig, lv: FeatureLevel, ndim: int) -> str:
    if lc.discriminator != "auto":
        return lc.discriminator
    if ndim != 4:
        return "mlp"
    return "conv" if lv.kind == "output" else "patch"


def _hidden(kind: str, lc: LevelConfig, method: MethodConfig) -> list[int]:
    if lc.hidden is not None:
        return list(lc.hidden)
    return {"mlp": list(method.disc_hidden), "patch": [256], "conv": [64, 128, 256]}[kind]


def build_multilevel(method: MethodConfig, model: nn.Module, task: Any, sources: Sequence[DomainSource],
                     seed: int) -> MultiLevelDiscriminator:
    """The discriminators of ``method.levels`` for ``model``; channel counts come from one probe pass (eval
    mode, no gradient) on one image per domain."""
    levels = resolve_levels(method, model)
    probe = balanced_batch(sources, 0, seed, 1)
    was = model.training
    model.eval()
    with torch.no_grad(), LevelTap(model, levels) as tap:
        out, pooled = model(probe.x)
        task.loss(out, [None] * len(probe.x), torch.zeros(len(probe.x), dtype=torch.bool))
        shapes = {n: tap.value(n, out, pooled)[0].shape for n in levels}
    model.train(was)
    heads = {}
    configs = {lc.name: lc for lc in method.levels or []}
    for name, lv in levels.items():
        shape = shapes[name]
        kind = _kind(configs[name], lv, len(shape))
        if kind in ("patch", "conv") and len(shape) != 4:
            raise ConfigError(f"method.levels: level {name!r} has shape {tuple(shape)}; {kind} needs a feature map")
        heads[name] = LevelHead(kind, int(shape[1] if len(shape) == 4 else shape[-1]), len(sources),
                                _hidden(kind, configs[name], method))
    return MultiLevelDiscriminator(levels, configs, heads, method, len(sources))


def _domain_targets(logits: torch.Tensor, domain: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    d = domain.to(logits.device)
    if rows is not None:
        d = d[rows.to(logits.device)]
    if logits.dim() == 4:
        d = d[:, None, None].expand(-1, logits.shape[2], logits.shape[3])
    return d


def multilevel_losses(model: nn.Module, disc: MultiLevelDiscriminator, task: Any, batch: Batch, step: int,
                      total_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
    """One joint forward pass: task loss on the labelled samples plus, per level, the weighted k-way domain
    cross-entropy behind that level's GRL, plus the consistency term. Returns (total, task loss, domain
    loss, record with per-level losses, coefficients and per-domain discriminator accuracies)."""
    with LevelTap(model, disc.levels) as tap:
        out, pooled = model(batch.x)
        task_loss = task.loss(out, batch.targets, batch.labelled)
    rec: dict[str, float] = {}
    dom_loss = task_loss.new_zeros(())
    probs: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    for name, head in disc.heads.items():
        f, rows = tap.value(name, out, pooled)
        alpha = disc.coefficient(name, step, total_steps)
        logits = head(grad_reverse(f, alpha))
        target = _domain_targets(logits, batch.domain, rows)
        if target.numel() == 0:
            continue
        loss = F.cross_entropy(logits, target)
        dom_loss = dom_loss + disc.configs[name].weight * loss
        probs[name] = (torch.softmax(logits, 1), rows)
        rec[f"domain_loss/{name}"], rec[f"alpha/{name}"] = float(loss.detach()), alpha
        with torch.no_grad():
            hit = logits.argmax(1) == target
            for d in target.unique().tolist():
                rec[f"disc_acc/{name}/{d}"] = float(hit[target == d].float().mean())
    total = task_loss + dom_loss
    cons = disc.method.consistency
    if cons is not None and cons.image in probs and cons.instance in probs:
        p_img, _ = probs[cons.image]
        p_ins, rows = probs[cons.instance]
        p_img = p_img.mean((2, 3)) if p_img.dim() == 4 else p_img
        diff = p_img[rows] - p_ins if rows is not None else p_img - p_ins
        c = (diff.abs().sum(1) if cons.norm == "l1" else diff.pow(2).sum(1)).mean()
        total = total + cons.weight * c
        rec["consistency_loss"] = float(c.detach())
    return total, task_loss, dom_loss, rec


def multilevel_step(model: nn.Module, disc: MultiLevelDiscriminator, task: Any, batch: Batch, step: int,
                    total_steps: int, opt: torch.optim.Optimizer) -> dict[str, float]:
    """One multi-level DANN update of the model and every discriminator with a single optimiser."""
    total, task_loss, dom_loss, rec = multilevel_losses(model, disc, task, batch, step, total_steps)
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    return {"loss": float(total.detach()), "task_loss": float(task_loss.detach()),
            "domain_loss": float(dom_loss.detach()), **rec}
