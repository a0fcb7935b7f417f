"""Refiner throughput on this machine: training iterations/s for CycleGAN (resnet 9 blocks, ngf=ndf=64),
CUT and FastCUT at 128x128 with batch 1 and 4, and refined images/s at inference, per device found (CPU,
CUDA, MPS) and precision (32, bf16-mixed, 16-mixed: the Compute object ``simreal refine train`` uses).

The models are stepped round-robin (one CycleGAN step, one CUT step, one FastCUT step, repeat) and the
median step time is reported, so load from other processes on a shared machine hits all of them alike.
Prints figures only (no assertions).

Usage: python benchmarks/refine_speed.py [--size 128] [--steps 3] [--batches 1,4] [--threads N]
       [--devices cpu,cuda] [--precisions 32,bf16-mixed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from simreal.refine.config import RefinerConfig
from simreal.refine.models import build_model
from simreal.runtime.compute import Compute
from simreal.runtime.device import available_devices, synchronize

VARIANTS = {
    "cyclegan": {"model": "cyclegan"},
    "cut": {"model": "cut"},
    "fastcut": {"model": "cut", "cut": {"nce_idt": False, "lambda_nce": 10.0}},
}


def _model(variant: str, size: int, ctx: Compute):
    data = dict(VARIANTS[variant])
    data["net"] = {"n_blocks": 9, "ngf": 64, "ndf": 64}
    data["data"] = {"crop_size": size}
    torch.manual_seed(0)
    m = build_model(RefinerConfig.model_validate(data), 3).to(ctx.device)
    m.amp = ctx
    m.train()
    return m


def train_rates(size: int, batch: int, steps: int, ctx: Compute) -> dict[str, float]:
    """Median iterations/s per variant, stepped round-robin after one warm-up step each."""
    a = torch.rand(batch, 3, size, size, device=ctx.device) * 2 - 1
    b = torch.rand(batch, 3, size, size, device=ctx.device) * 2 - 1
    models = {name: _model(name, size, ctx) for name in VARIANTS}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for m in models.values():
        m.train_step(a, b, None, None, 0)
    for _ in range(steps):
        for name, m in models.items():
            synchronize(ctx.device)
            t = time.perf_counter()
            m.train_step(a, b, None, None, 0)
            synchronize(ctx.device)
            times[name].append(time.perf_counter() - t)
    return {name: 1.0 / statistics.median(ts) for name, ts in times.items()}


@torch.no_grad()
def infer_rate(size: int, batch: int, steps: int, ctx: Compute) -> float:
    m = _model("cyclegan", size, ctx)
    m.eval()
    x = torch.rand(batch, 3, size, size, device=ctx.device) * 2 - 1
    with ctx.autocast():
        m.refine(x)
    ts = []
    for _ in range(steps):
        synchronize(ctx.device)
        t = time.perf_counter()
        with ctx.autocast():
            m.refine(x)
        synchronize(ctx.device)
        ts.append(time.perf_counter() - t)
    return batch / statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--devices", default=",".join(available_devices()))
    ap.add_argument("--precisions", default="32")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"load {os.getloadavg()[0]:.2f}, size {args.size}, median of {args.steps} steps",
        flush=True,
    )
    for dev in args.devices.split(","):
        for prec in args.precisions.split(","):
            ctx = Compute.create(dev, prec)
            for batch in [int(b) for b in args.batches.split(",")]:
                rates = train_rates(args.size, batch, args.steps, ctx)
                for name, r in rates.items():
                    print(f"{dev} {prec} train {name:9s} batch {batch}: {r:.4f} it/s ({r * batch:.4f} img/s)",
                          flush=True)
                print(
                    f"  CUT / CycleGAN training throughput: {rates['cut'] / rates['cyclegan']:.2f}x; "
                    f"FastCUT / CycleGAN: {rates['fastcut'] / rates['cyclegan']:.2f}x",
                    flush=True,
                )
                print(f"{dev} {prec} infer generator batch {batch}: {infer_rate(args.size, batch, args.steps, ctx):.2f}"
                      " img/s", flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
