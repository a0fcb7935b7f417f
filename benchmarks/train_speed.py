"""Training throughput (images/s) of ResNet-18/50 per device, precision and memory layout (NCHW, or
channels-last: the ``channels_last`` compute setting) found on this machine.

One training step = forward + cross-entropy + backward + Adam, through :class:`simreal.runtime.compute.Compute`
(autocast and loss scaling exactly as ``simreal train`` uses them), on a fixed batch already on the device (no
data loading). Devices: the CPU, plus CUDA and MPS when present; precisions: 32, bf16-mixed, 16-mixed (on
the CPU the mixed precisions only run where the CPU has the instructions; they are meant for GPUs). The
median step time of ``--steps`` steps after ``--warmup`` is reported. Prints figures only.

Usage: python benchmarks/train_speed.py [--models resnet18,resnet50] [--size 64] [--batch 32] [--steps 10]
       [--devices cpu,cuda] [--precisions 32,bf16-mixed,16-mixed] [--layouts nchw,channels_last] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from simreal.nn.registry import create_model
from simreal.runtime.compute import PRECISIONS, Compute
from simreal.runtime.device import available_devices, synchronize


def images_per_s(arch: str, device: str, precision: str, size: int, batch: int, steps: int, warmup: int,
                 channels_last: bool = False) -> float:
    ctx = Compute.create(device, precision, channels_last=channels_last)
    torch.manual_seed(0)
    model = ctx.place(create_model(arch, "classifier", num_classes=10, in_channels=3)).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size, device=ctx.device)
    y = torch.randint(0, 10, (batch,), device=ctx.device)
    times = []
    for i in range(warmup + steps):
        synchronize(ctx.device)
        t0 = time.perf_counter()
        with ctx.autocast():
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.step(opt)
        ctx.update()
        synchronize(ctx.device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet18,resnet50")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--devices", default=",".join(available_devices()))
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--layouts", default="nchw,channels_last")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default, one per core; "
                    "1 keeps the figures meaningful on a machine other jobs share: a 2-thread step waits for "
                    "its slower thread)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.2f}; {args.size}x{args.size}, batch {args.batch}, median of {args.steps} steps",
          flush=True)
    for arch in args.models.split(","):
        base: float | None = None
        for dev in args.devices.split(","):
            for prec in args.precisions.split(","):
                for layout in args.layouts.split(","):
                    what = f"{arch:9s} {dev:5s} {prec:10s} {layout:13s}"
                    try:
                        r = images_per_s(arch, dev, prec, args.size, args.batch, args.steps, args.warmup,
                                         layout == "channels_last")
                    except (RuntimeError, ValueError) as exc:  # e.g. float16 kernels missing on this CPU
                        print(f"{what}: not available ({str(exc).splitlines()[0][:80]})")
                        continue
                    base = base or r
                    print(f"{what}: {r:8.1f} images/s  ({r / base:.2f}x {arch} cpu 32 nchw)", flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
