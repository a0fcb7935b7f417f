"""Refining small image arrays in memory: ``refine_arrays(synthetic, real, seed) -> refined``.

Used by the digits benchmark (:mod:`simreal.bench.digits`): images are (N, H, W) float arrays with
``levels`` grey levels 0..levels-1 (scikit-learn's 8x8 digits: 0..16). A small CycleGAN (the refine
package's :class:`~simreal.refine.models.CycleGAN`: ResNet generators with an additive skip, PatchGANs,
LSGAN, cycle and identity L1, image pools) or CUT (``settings.model``) is trained from the synthetic images
(domain A) to the unlabelled real ones (domain B) entirely in memory, then applied to the synthetic images.
Images are nearest-upsampled by ``scale`` for the networks and area-downsampled back, so an identity generator
returns its input exactly; the result is rounded to the same grey levels.

With a frozen classifier of the original images (:func:`array_consistency`), the refiner is trained with
semantic consistency (CyCADA; :mod:`simreal.refine.consistency`) against the synthetic labels.

Deterministic for a given ``seed`` (fixed thread count, own NumPy generator, torch's global generator
forked so the caller's random state is left untouched).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from simreal.refine.config import CUTConfig, LossConfig, NetConfig, RefinerConfig, TrainConfig
from simreal.refine.consistency import SemanticConsistency
from simreal.refine.models import RefinerModel, build_model
from simreal.runtime.device import forked_rng

DEFAULT_STEPS = 600


@dataclass(frozen=True)
class ArrayRefinerSettings:
    """Network and schedule of the in-memory refiner (defaults: the benchmark's setting)."""

    model: Literal["cyclegan", "cut"] = "cyclegan"
    scale: int = 2  # nearest upsampling factor for the networks (8x8 -> 16x16)
    ngf: int = 8
    n_blocks: int = 3
    ndf: int = 8
    n_layers_d: int = 2
    skip: bool = True
    conditional: bool = False  # class-conditional discriminators (classes from the consistency model)
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    batch: int = 16
    lr: float = 5e-4
    pool_size: int = 50
    num_patches: int = 64  # CUT: PatchNCE locations per layer
    lambda_nce: float = 1.0  # CUT
    threads: int = 1  # <= 2; one is fastest for these tiny convs on a shared machine
    extra: dict[str, Any] = field(default_factory=dict)

    def refiner_config(self, steps: int, seed: int) -> RefinerConfig:
        half = max(steps // 2, 1)
        # CUT's PatchNCE layers for this generator: input, both down-sampling convs, first and last block
        nce = [0, 4, 7, 10, 9 + self.n_blocks] if self.n_blocks > 1 else [0, 4, 7, 10]
        return RefinerConfig(
            model=self.model,
            net=NetConfig(generator="resnet", n_blocks=self.n_blocks, ngf=self.ngf, ndf=self.ndf,
                          n_layers_d=self.n_layers_d, skip=self.skip),
            loss=LossConfig(lambda_A=self.lambda_cycle, lambda_B=self.lambda_cycle,
                            lambda_identity=self.lambda_identity),
            cut=CUTConfig(nce_layers=nce, num_patches=self.num_patches, lambda_nce=self.lambda_nce),
            train=TrainConfig(seed=seed, epochs=half, epochs_decay=max(steps - half, 1), batch_size=self.batch,
                              lr=self.lr, pool_size=self.pool_size),
        )


def _to_net(x: np.ndarray, levels: int, scale: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    t = t * (2.0 / (levels - 1)) - 1.0
    return F.interpolate(t, scale_factor=scale, mode="nearest") if scale > 1 else t


def _from_net(t: torch.Tensor, levels: int, scale: int) -> np.ndarray:
    if scale > 1:
        t = F.avg_pool2d(t, scale)
    v = (t.squeeze(1).clamp(-1.0, 1.0) + 1.0) * ((levels - 1) / 2.0)
    return np.clip(np.round(v.numpy()), 0, levels - 1).astype(np.float32)


def _check(name: str, x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[0] < 1:
        raise ValueError(f"{name}: expected an (N, H, W) image array, got shape {a.shape}")
    return a


def array_consistency(classifier: torch.nn.Module, weight: float = 1.0, scale: int = 2,
                      min_confidence: float = 0.0, both_directions: bool = True,
                      num_classes: int | None = None) -> SemanticConsistency:
    """Semantic consistency with a classifier of the original (N, 1, H, W) images scaled to [0, 1] (levels / 16
    for the digits): the refiner's up-sampled images are area-pooled back by ``scale`` before it sees them. The
    classifier is frozen in place (pass a copy if it is trained further). ``num_classes``: its classes, needed
    for class-conditional discriminators (``ArrayRefinerSettings.conditional``)."""
    def to_input(x: torch.Tensor) -> torch.Tensor:
        y = (x + 1.0) * 0.5
        return F.avg_pool2d(y, scale) if scale > 1 else y

    return SemanticConsistency(classifier, "classify", to_input, weight, min_confidence=min_confidence,
                               both_directions=both_directions, num_classes=num_classes)


def train_array_refiner(
    synthetic_x: np.ndarray,
    real_x: np.ndarray,
    seed: int,
    steps: int = DEFAULT_STEPS,
    levels: int = 17,
    settings: ArrayRefinerSettings | None = None,
    log_every: int = 0,
    device: torch.device | str = "cpu",
    *,
    consistency: SemanticConsistency | None = None,
    synthetic_y: np.ndarray | None = None,
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[int, RefinerModel], None] | None = None,
) -> RefinerModel:
    """Train the in-memory refiner (A = ``synthetic_x``, B = ``real_x``) on ``device`` and return it (eval
    mode).

    ``consistency`` adds the semantic-consistency loss, against ``synthetic_y`` when given (else the frozen
    model's own predictions); with ``settings.conditional`` its classes also condition the discriminators.
    ``on_checkpoint(step, model)`` is called (model in eval mode, then back to training) after each step listed in
    ``checkpoints``. Call inside :func:`torch.random.fork_rng` if the
    caller's torch random state matters."""
    s = settings or ArrayRefinerSettings()
    a_all = _to_net(synthetic_x, levels, s.scale).to(device)
    b_all = _to_net(real_x, levels, s.scale).to(device)
    y_all = None if synthetic_y is None else torch.as_tensor(np.asarray(synthetic_y), dtype=torch.long).to(device)
    if y_all is not None and len(y_all) != len(a_all):
        raise ValueError(f"synthetic_y has {len(y_all)} labels for {len(a_all)} images")
    cond = 0
    if s.conditional:
        if consistency is None or not consistency.num_classes:
            raise ValueError("settings.conditional needs a consistency model with num_classes (array_consistency)")
        cond = int(consistency.num_classes)
    torch.manual_seed(seed)
    model = build_model(s.refiner_config(steps, seed), channels=1, cond_classes=cond).to(device)
    model.consistency = None if consistency is None else consistency.to(device)
    model.train()
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x5EF1,)))
    batch = min(s.batch, len(a_all), len(b_all))
    wanted = set(checkpoints)
    for it in range(steps):
        model.set_epoch(it)  # one "epoch" per step: constant lr for the first half, then linear to 0
        ia = torch.from_numpy(rng.choice(len(a_all), size=batch, replace=False)).to(device)
        ib = torch.from_numpy(rng.choice(len(b_all), size=batch, replace=False)).to(device)
        labels = None if y_all is None else y_all[ia]
        losses = model.train_step(a_all[ia], b_all[ib], None, None, it, labels)
        if log_every and (it % log_every == 0 or it == steps - 1):
            print(f"step {it}: " + " ".join(f"{k}={v:.3f}" for k, v in sorted(losses.items())), flush=True)
        if on_checkpoint is not None and it + 1 in wanted and it + 1 < steps:
            model.eval()
            on_checkpoint(it + 1, model)
            model.train()
    model.eval()
    if on_checkpoint is not None and steps in wanted:
        on_checkpoint(steps, model)
    return model


@torch.no_grad()
def apply_array_refiner(model: RefinerModel, x: np.ndarray, levels: int = 17, scale: int = 2,
                        batch: int = 512) -> np.ndarray:
    """Refine (N, H, W) images with a trained refiner (on its device); same shape, float32, rounded to
    ``levels`` levels."""
    x = _check("images", x)
    dev = next(model.parameters()).device
    out = [
        _from_net(model.refine(_to_net(x[i:i + batch], levels, scale).to(dev)).cpu(), levels, scale)
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(out, 0)


def refine_arrays(
    synthetic_x: np.ndarray,
    real_x: np.ndarray,
    seed: int,
    steps: int = DEFAULT_STEPS,
    levels: int = 17,
    settings: ArrayRefinerSettings | None = None,
    device: torch.device | str = "cpu",
    *,
    consistency: SemanticConsistency | None = None,
    synthetic_y: np.ndarray | None = None,
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Refine synthetic images towards unlabelled real ones, in memory (networks on ``device``).

    ``synthetic_x`` (N, H, W) and ``real_x`` (M, H, W) hold grey levels 0..``levels``-1 (the digits
    benchmark: 8x8, 0..16, float32). Trains a small CycleGAN for ``steps`` iterations on the two sets
    (``real_x`` is used without labels) with at most ``settings.threads`` torch threads, and returns the
    refined synthetic images: (N, H, W) float32, integers in 0..levels-1. Same ``seed`` → same output;
    the caller's torch thread count and random state are restored.

    ``consistency`` / ``synthetic_y``: semantic consistency (see :func:`train_array_refiner`).
    ``on_checkpoint(step, refined)`` receives the synthetic images refined by the model after each step listed
    in ``checkpoints``.
    """
    s = settings or ArrayRefinerSettings()
    syn, real = _check("synthetic_x", synthetic_x), _check("real_x", real_x)
    if syn.shape[1:] != real.shape[1:]:
        raise ValueError(f"synthetic images {syn.shape[1:]} and real images {real.shape[1:]} differ in size")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if steps == 0:
        return np.clip(np.round(syn.astype(np.float32)), 0, levels - 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(s.threads, 2)))
    try:
        dev = torch.device(device)
        with forked_rng(dev):
            hook = None
            if on_checkpoint is not None:
                def hook(step: int, m: RefinerModel) -> None:
                    on_checkpoint(step, apply_array_refiner(m, syn, levels, s.scale))
            model = train_array_refiner(syn, real, seed, steps, levels, s, device=dev, consistency=consistency,
                                        synthetic_y=synthetic_y, checkpoints=checkpoints, on_checkpoint=hook)
            return apply_array_refiner(model, syn, levels, s.scale)
    finally:
        torch.set_num_threads(threads)


__all__ = ["DEFAULT_STEPS", "ArrayRefinerSettings", "apply_array_refiner", "array_consistency", "refine_arrays",
           "train_array_refiner"]
