"""Data-parallel scaling: training throughput of 1 process vs N processes (DistributedDataParallel over gloo on
the CPU, NCCL with one GPU each on CUDA), with the global batch fixed, through the code ``simreal train
--nproc N`` runs (Compute, DistributedDataParallel wrapping, SyncBatchNorm, rank shards).

The model must be compute-bound for data parallelism to pay on a CPU: by default ResNet-18 at 128x128, global
batch 64 (32 per rank with 2 processes; at 64x64 and batch 32 the 47 MB gradient all-reduce and the BatchNorm
synchronisation weigh as much as the compute). Baselines: one process with one thread (the same total of busy
cores per process: scaling efficiency), and one process with as many threads as there are processes (what
a single process would get from the same cores). Each configuration is timed over ``--steps`` steps after
``--warmup``; images/s = global batch x steps / the slowest rank's time, with the cores the configuration
actually got (CPU seconds / wall seconds: on a shared machine a ratio means little when these fall short of
the threads asked for). Prints figures only.

Usage: python benchmarks/ddp_scaling.py [--nproc 2] [--arch resnet18] [--size 128] [--batch 64] [--steps 10]
       [--device cpu] [--no-sync-bn]
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, threads: int, out: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    from simreal.nn.registry import create_model
    from simreal.nn.syncbn import convert_sync_batchnorm
    from simreal.runtime.compute import Compute
    from simreal.runtime.device import synchronize
    from simreal.runtime.distributed import shard_size

    ctx = Compute.create(args.device, args.precision)
    torch.manual_seed(0)
    model = create_model(args.arch, "classifier", num_classes=10, in_channels=3)
    if ctx.dist.active and args.sync_bn:
        model = convert_sync_batchnorm(model, ctx.device)
    model = model.to(ctx.device).train()
    net = ctx.wrap(model)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    own = shard_size(args.batch, ctx.dist, "--batch")
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(own, 3, args.size, args.size, generator=g).to(ctx.device)
    y = torch.randint(0, 10, (own,), generator=g).to(ctx.device)
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            synchronize(ctx.device)
            t0, c0 = time.perf_counter(), time.process_time()
        with ctx.autocast():
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.step(opt)
        ctx.update()
    synchronize(ctx.device)
    out[rank] = (time.perf_counter() - t0, time.process_time() - c0)
    ctx.close()


def measure(world: int, threads: int, args: argparse.Namespace) -> tuple[float, float]:
    """Global images/s of ``world`` processes with ``threads`` threads each, and the cores they got (CPU seconds
    of all ranks / wall seconds of the slowest: below ``world x threads`` when the machine is shared)."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        out = manager.dict()
        mp.start_processes(_worker, args=(world, _port(), args, threads, out), nprocs=world, start_method="spawn")
        slowest = max(w for w, _ in out.values())
        cpu = sum(c for _, c in out.values())
    return args.batch * args.steps / slowest, cpu / slowest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="32")
    ap.add_argument("--no-sync-bn", dest="sync_bn", action="store_false")
    ap.add_argument("--repeats", type=int, default=2, help="alternate the configurations this many times, keep "
                    "the best of each (load from other processes on a shared machine hits them alike)")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"torch {torch.__version__}, cpus {cores}, load {os.getloadavg()[0]:.2f}; {args.arch} {args.size}x"
          f"{args.size}, global batch {args.batch}, {args.steps} steps, device {args.device}, sync BN {args.sync_bn}",
          flush=True)
    per = max(1, cores // args.nproc) if args.device == "cpu" else 1
    configs = {f"1 process x {per} thread(s)": (1, per),
               f"1 process x {per * args.nproc} threads": (1, per * args.nproc),
               f"{args.nproc} processes x {per} thread(s)": (args.nproc, per)}
    best: dict[str, float] = {}
    for r in range(args.repeats):
        for name, (world, threads) in configs.items():
            rate, got = measure(world, threads, args)
            best[name] = max(best.get(name, 0.0), rate)
            print(f"  round {r + 1}: {name:28s} {rate:8.1f} images/s, {got:4.2f} cores busy "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    names = list(configs)
    for name in names:
        print(f"{name:28s} {best[name]:8.1f} images/s")
    print(f"speed-up {args.nproc} processes vs 1 process x {per} thread(s): {best[names[2]] / best[names[0]]:.2f}x; "
          f"vs 1 process x {per * args.nproc} threads: {best[names[2]] / best[names[1]]:.2f}x")
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
