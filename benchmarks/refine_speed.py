"""Refiner throughput on this machine: training iterations/s for CycleGAN (resnet 9 blocks, ngf=ndf=64)
and CUT / FastCUT at 128x128 with batch 1 and 4, and refined images/s at inference.

Prints figures only (no assertions). Usage: python benchmarks/refine_speed.py [--size 128] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from simreal.refine.config import RefinerConfig
from simreal.refine.models import build_model


def _cfg(model: str, fast: bool = False) -> RefinerConfig:
    data: dict = {"model": model, "net": {"n_blocks": 9, "ngf": 64, "ndf": 64}}
    if fast:
        data["cut"] = {"nce_idt": False, "lambda_nce": 10.0}
    return RefinerConfig.model_validate(data)


def train_rate(model: str, size: int, batch: int, steps: int, fast: bool = False) -> float:
    torch.manual_seed(0)
    m = build_model(_cfg(model, fast), 3)
    m.train()
    a, b = torch.rand(batch, 3, size, size) * 2 - 1, torch.rand(batch, 3, size, size) * 2 - 1
    m.train_step(a, b, None, None, 0)  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        m.train_step(a, b, None, None, 0)
    return steps / (time.perf_counter() - t)


@torch.no_grad()
def infer_rate(size: int, batch: int, steps: int) -> float:
    m = build_model(_cfg("cyclegan"), 3)
    m.eval()
    x = torch.rand(batch, 3, size, size) * 2 - 1
    m.refine(x)
    t = time.perf_counter()
    for _ in range(steps):
        m.refine(x)
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batches", default="1,4")
    args = ap.parse_args()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"load {os.getloadavg()[0]:.2f}, size {args.size}"
    )
    for batch in [int(b) for b in args.batches.split(",")]:
        rates = {
            "cyclegan": train_rate("cyclegan", args.size, batch, args.steps),
            "cut": train_rate("cut", args.size, batch, args.steps),
            "fastcut": train_rate("cut", args.size, batch, args.steps, fast=True),
        }
        for name, r in rates.items():
            print(f"train {name:9s} batch {batch}: {r:.3f} it/s ({r * batch:.3f} img/s)")
        print(
            f"  CUT / CycleGAN training throughput: {rates['cut'] / rates['cyclegan']:.2f}x; "
            f"FastCUT / CycleGAN: {rates['fastcut'] / rates['cyclegan']:.2f}x"
        )
        print(f"infer generator  batch {batch}: {infer_rate(args.size, batch, args.steps):.2f} img/s")


if __name__ == "__main__":
    main()
