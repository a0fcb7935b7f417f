"""Training throughput (images/s) of ResNet-18 at 64x64 on CPU, batch 32 (forward + backward + Adam)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from simreal.nn.resnet import resnet18


def main(batch: int = 32, size: int = 64, steps: int = 10, warmup: int = 2) -> None:
    torch.manual_seed(0)
    model = resnet18(10)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    print(f"ResNet-18 {size}x{size} batch {batch}, {torch.get_num_threads()} threads: "
          f"{batch * steps / dt:.1f} images/s ({dt / steps * 1000:.0f} ms/step)")


if __name__ == "__main__":
    main()
