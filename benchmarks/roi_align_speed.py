"""RoIAlign speed, forward + backward on a CPU core: the separable method against the grid_sample method
(baseline), at the box-head shape of a small Mask R-CNN (24 images, 64 RoIs each, 7x7 bins, 2x2 samples)
and of the reference model at 800 px (one image, 256 RoIs on P3, 256 channels).
Run: ``.venv/bin/python benchmarks/roi_align_speed.py``."""

from __future__ import annotations

import os
import time

import torch

from simreal.nn.roi_align import roi_align


def _rois(n: int, k: int, size: float, gen: torch.Generator) -> torch.Tensor:
    out = []
    for i in range(n):
        xy = torch.rand(k, 2, generator=gen) * size * 0.8
        wh = torch.rand(k, 2, generator=gen) * size * 0.3 + 4
        out.append(torch.cat([torch.full((k, 1), float(i)), xy, xy + wh], 1))
    return torch.cat(out)


def bench(method: str, feat: torch.Tensor, rois: torch.Tensor, scale: float, reps: int = 5) -> float:
    for i in range(reps + 1):
        if i == 1:
            t0 = time.process_time()
        f = feat.detach().requires_grad_(True)
        roi_align(f, rois, 7, scale, 2, False, method).sum().backward()  # type: ignore[arg-type]
    return (time.process_time() - t0) / reps


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    cases = [("small: 24 x 64 RoIs on 12x12x64 (96 px, P3)", torch.randn(24, 64, 12, 12), _rois(24, 64, 96, g), 1 / 8),
             ("reference: 1 x 256 RoIs on 100x100x256 (800 px, P3)", torch.randn(1, 256, 100, 100),
              _rois(1, 256, 800, g), 1 / 8)]
    print(f"load average {os.getloadavg()[0]:.1f}; CPU seconds per forward+backward (1 thread)")
    print("| case | grid_sample (baseline) | separable | speed-up |\n|---|---|---|---|")
    for name, feat, rois, scale in cases:
        a, b = bench("grid", feat, rois, scale), bench("separable", feat, rois, scale)
        print(f"| {name} | {a:.3f} s | {b:.3f} s | {a / b:.1f}x |")


if __name__ == "__main__":
    main()
