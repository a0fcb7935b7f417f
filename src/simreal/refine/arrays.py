"""Refining small image arrays in memory: ``refine_arrays(synthetic, real, seed) -> refined``.

Used by the digits benchmark (:mod:`simreal.bench.digits`): images are (N, H, W) float arrays with
``levels`` grey levels 0..levels-1 (scikit-learn's 8x8 digits: 0..16). A small CycleGAN (the refine
package's :class:`~simreal.refine.models.CycleGAN`: ResNet generators with an additive skip, PatchGANs,
LSGAN, cycle and identity L1, image pools) is trained from the synthetic images (domain A) to the
unlabelled real ones (domain B) entirely in memory, then applied to the synthetic images. Images are
nearest-upsampled by ``scale`` for the networks and area-downsampled back, so an identity generator
returns its input exactly; the result is rounded to the same grey levels.

Deterministic for a given ``seed`` (fixed thread count, own NumPy generator, torch's global generator
forked so the caller's random state is left untouched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from simreal.refine.config import LossConfig, NetConfig, RefinerConfig, TrainConfig
from simreal.refine.models import CycleGAN

DEFAULT_STEPS = 600


@dataclass(frozen=True)
class ArrayRefinerSettings:
    """Network and schedule of the in-memory refiner (defaults: the benchmark's setting)."""

    scale: int = 2  # nearest upsampling factor for the networks (8x8 -> 16x16)
    ngf: int = 8
    n_blocks: int = 3
    ndf: int = 8
    n_layers_d: int = 2
    skip: bool = True
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    batch: int = 16
    lr: float = 5e-4
    pool_size: int = 50
    threads: int = 1  # <= 2; one is fastest for these tiny convs on a shared machine
    extra: dict[str, Any] = field(default_factory=dict)

    def refiner_config(self, steps: int, seed: int) -> RefinerConfig:
        half = max(steps // 2, 1)
        return RefinerConfig(
            model="cyclegan",
            net=NetConfig(generator="resnet", n_blocks=self.n_blocks, ngf=self.ngf, ndf=self.ndf,
                          n_layers_d=self.n_layers_d, skip=self.skip),
            loss=LossConfig(lambda_A=self.lambda_cycle, lambda_B=self.lambda_cycle,
                            lambda_identity=self.lambda_identity),
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


def train_array_refiner(
    synthetic_x: np.ndarray,
    real_x: np.ndarray,
    seed: int,
    steps: int = DEFAULT_STEPS,
    levels: int = 17,
    settings: ArrayRefinerSettings | None = None,
    log_every: int = 0,
    device: torch.device | str = "cpu",
) -> CycleGAN:
    """Train the in-memory CycleGAN (A = ``synthetic_x``, B = ``real_x``) on ``device`` and return it (eval
    mode).

    Call inside :func:`torch.random.fork_rng` if the caller's torch random state matters."""
    s = settings or ArrayRefinerSettings()
    a_all = _to_net(synthetic_x, levels, s.scale).to(device)
    b_all = _to_net(real_x, levels, s.scale).to(device)
    torch.manual_seed(seed)
    model = CycleGAN(s.refiner_config(steps, seed), channels=1).to(device)
    model.train()
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x5EF1,)))
    batch = min(s.batch, len(a_all), len(b_all))
    for it in range(steps):
        model.set_epoch(it)  # one "epoch" per step: constant lr for the first half, then linear to 0
        ia = torch.from_numpy(rng.choice(len(a_all), size=batch, replace=False)).to(device)
        ib = torch.from_numpy(rng.choice(len(b_all), size=batch, replace=False)).to(device)
        losses = model.train_step(a_all[ia], b_all[ib], None, None, it)
        if log_every and (it % log_every == 0 or it == steps - 1):
            print(f"step {it}: " + " ".join(f"{k}={v:.3f}" for k, v in sorted(losses.items())), flush=True)
    model.eval()
    return model


@torch.no_grad()
def apply_array_refiner(model: CycleGAN, x: np.ndarray, levels: int = 17, scale: int = 2,
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
) -> np.ndarray:
    """Refine synthetic images towards unlabelled real ones, in memory (networks on ``device``).

    ``synthetic_x`` (N, H, W) and ``real_x`` (M, H, W) hold grey levels 0..``levels``-1 (the digits
    benchmark: 8x8, 0..16, float32). Trains a small CycleGAN for ``steps`` iterations on the two sets
    (``real_x`` is used without labels) with at most ``settings.threads`` torch threads, and returns the
    refined synthetic images: (N, H, W) float32, integers in 0..levels-1. Same ``seed`` → same output;
    the caller's torch thread count and random state are restored.
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
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            model = train_array_refiner(syn, real, seed, steps, levels, s, device=dev)
            return apply_array_refiner(model, syn, levels, s.scale)
    finally:
        torch.set_num_threads(threads)


__all__ = ["DEFAULT_STEPS", "ArrayRefinerSettings", "apply_array_refiner", "refine_arrays", "train_array_refiner"]
