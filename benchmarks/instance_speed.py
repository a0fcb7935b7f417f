"""Mask R-CNN training and inference speed on one CPU thread: the CPU configuration of
``configs/train/instance_cpu.yaml`` (ResNet-18 FPN, base width 16, 128 px) against the same backbone with
torchvision's default heads (baseline), and the cost of multi-level DANN on top. CPU seconds per step
(3 domains x 4 images) and per inference image. Run: ``.venv/bin/python benchmarks/instance_speed.py``."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from simreal.adapt.config import MethodConfig, TrainConfig
from simreal.adapt.multilevel import build_multilevel, multilevel_step
from simreal.adapt.steps import supervised_step
from simreal.config import load_config
from simreal.datasets.torchdata import ArraySource, balanced_batch
from simreal.tasks.instance import InstanceTask

SIZE, PER_DOMAIN = 128, 4


def _images(n: int, gen: torch.Generator) -> tuple[torch.Tensor, list[dict]]:
    x = torch.rand(n, 3, SIZE, SIZE, generator=gen) * 0.3
    targets = []
    for i in range(n):
        boxes, masks, labels = [], [], []
        for _ in range(3):
            s = int(torch.randint(16, 48, (1,), generator=gen))
            x0, y0 = (int(v) for v in torch.randint(0, SIZE - s, (2,), generator=gen))
            m = torch.zeros(SIZE, SIZE, dtype=torch.uint8)
            m[y0:y0 + s, x0:x0 + s] = 1
            x[i, :, y0:y0 + s, x0:x0 + s] += 0.6
            boxes.append([x0, y0, x0 + s, y0 + s])
            masks.append(m)
            labels.append(int(torch.randint(1, 4, (1,), generator=gen)))
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32).numpy(),
                        "labels": torch.tensor(labels).numpy(), "masks": torch.stack(masks).numpy()})
    return x, targets


REPS = 6  # timed steps per measurement (after 2 warm-up steps); --reps N overrides


def _cpu_per_step(step: object) -> float:
    reps = REPS
    for i in range(reps + 2):
        if i == 2:
            t0 = time.process_time()
        step(i)  # type: ignore[operator]
    return (time.process_time() - t0) / reps


def measure(name: str, opts: dict, cfg: TrainConfig, sources: list[ArraySource]) -> str:
    """One table row: train CPU-s per step (plain, multi-level DANN), inference CPU-s per image, parameters."""
    task = InstanceTask(3, ["a", "b", "c"], **opts)
    torch.manual_seed(0)
    model = task.build_model(cfg.model.arch, 3, (SIZE, SIZE), base_width=cfg.model.base_width)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    plain = _cpu_per_step(lambda i: supervised_step(model, task, balanced_batch(sources, i, 0, PER_DOMAIN), opt))
    method = MethodConfig(name="dann", alpha=0.1, schedule="constant", levels=cfg.method.levels,
                          consistency=cfg.method.consistency)
    disc = build_multilevel(method, model, task, sources, 0)
    opt2 = torch.optim.Adam(list(model.parameters()) + list(disc.parameters()), 1e-3)
    ml = _cpu_per_step(lambda i: multilevel_step(model, disc, task, balanced_batch(sources, i, 0, PER_DOMAIN), i, 100,
                                                 opt2))
    model.eval()
    x = sources[0].images[:8]
    t0 = time.process_time()
    task.predict(model, x)
    infer = (time.process_time() - t0) / len(x)
    n = sum(p.numel() for p in model.parameters())
    return f"| {name} | {plain:.2f} | {ml:.2f} | {infer:.3f} | {n / 1e6:.2f} M |"


def main() -> None:
    global REPS
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=REPS, help="timed steps per measurement (a busy machine: fewer)")
    REPS = ap.parse_args().reps
    torch.set_num_threads(1)
    cfg = load_config(TrainConfig, Path(__file__).resolve().parents[1] / "configs/train/instance_cpu.yaml")
    gen = torch.Generator().manual_seed(0)
    sources = []
    for d in range(3):
        x, t = _images(16, gen)
        sources.append(ArraySource(f"d{d}", d, x, t))
    print(f"load average {os.getloadavg()[0]:.1f}; {SIZE} px, {PER_DOMAIN} images x 3 domains per step, 1 thread, "
          f"{REPS} timed steps")
    print("| model | train CPU-s/step | + multi-level DANN | inference CPU-s/image | parameters |")
    print("|---|---|---|---|---|")
    small = cfg.instance.model_dump()
    default_heads = {k: v for k, v in small.items() if k in ("anchor_sizes", "returned_layers", "canonical_scale")}
    print(measure("baseline: default heads (FPN 256, box 1024, mask 4 x 256)", default_heads, cfg, sources))
    print(measure("instance_cpu.yaml", small, cfg, sources))


if __name__ == "__main__":
    main()
