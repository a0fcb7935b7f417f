"""Where and how a training loop computes: device, precision, data parallelism, in one object.

A :class:`Compute` is made once per command (:meth:`Compute.create` from the ``device``, ``precision``
and ``deterministic`` settings of a config or the CLI) and passed to the loops and step functions, which
then never name a device themselves:

* ``to(x)``: copy a tensor (or batch) to the device, non-blocking (pinned host memory makes it
  asynchronous on CUDA);
* ``autocast()``: mixed precision for the forward pass and the loss (``16-mixed``: float16,
  ``bf16-mixed``: bfloat16; ``32``: off);
* ``backward(loss)``, ``step(opt)``, ``update()``: the backward pass and optimiser steps, through a
  :class:`torch.amp.GradScaler` under ``16-mixed`` (float16 gradients underflow without loss scaling;
  a step whose gradients hold inf/NaN is skipped and the scale lowered);
* ``place(module)``: a network on the device, in channels-last memory when asked (NHWC convolutions,
  faster with oneDNN on CPUs and with tensor cores on GPUs; inputs may stay NCHW);
* ``wrap(module)``: DistributedDataParallel when the process is one rank of several
  (:mod:`simreal.runtime.distributed`), ``is_main`` for rank-0-only writes.

Mixed precision is meant for CUDA; it also runs on the CPU (autocast and the scaler exist there), which
is how it is tested on machines without a GPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from simreal.errors import ConfigError, warn
from simreal.runtime import distributed
from simreal.runtime.device import PRECISIONS, resolve_device
from simreal.runtime.distributed import DistInfo

Precision = Literal["32", "16-mixed", "bf16-mixed"]
_AUTOCAST = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def check_precision(precision: str, where: str = "--precision") -> str:
    p = str(precision).strip().lower()
    if p in ("32", "32-true", "fp32", "float32"):
        return "32"
    if p not in PRECISIONS:
        raise ConfigError(f"{where}: {precision!r} is not a precision (expected 32, 16-mixed or bf16-mixed)")
    return p


def configure_backends(device: torch.device, deterministic: bool) -> None:
    """cuDNN autotuning for speed, or deterministic algorithms (see docs/devices.md, "Determinism")."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (CUDA >= 10.2)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed-size training batches: autotuned convolutions pay off


@dataclass
class Compute:
    """The device, precision and process group of one command; see the module docstring."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "32"
    dist: DistInfo = field(default_factory=DistInfo)
    scaler: Any = None  # torch.amp.GradScaler under 16-mixed
    channels_last: bool = False

    @classmethod
    def create(cls, device: str | None = "auto", precision: str = "32", deterministic: bool = False,
               where: str = "device", channels_last: bool = False) -> Compute:
        """Resolve ``device`` (one rank of a torchrun job uses ``cuda:LOCAL_RANK``), join the process group
        torchrun describes, and set up precision and backend flags."""
        prec = check_precision(precision, "precision")
        info = distributed.from_env()
        dev = resolve_device(device, where)
        if info.active and dev.type == "cuda":
            spec = (device or "auto").strip().lower()
            if ":" in spec:
                raise ConfigError(f"{where}: {spec} names one GPU, but this is one of {info.world_size} processes; "
                                  "use cuda or auto (each process takes the GPU of its LOCAL_RANK)")
            if info.local_rank >= torch.cuda.device_count():
                raise ConfigError(f"{where}: process {info.local_rank} on this machine has no GPU of its own "
                                  f"({torch.cuda.device_count()} CUDA device(s)); start at most that many per machine")
            dev = torch.device("cuda", info.local_rank)
            torch.cuda.set_device(dev)
        configure_backends(dev, deterministic)
        if prec == "16-mixed" and dev.type == "cpu" and info.is_main:
            warn(f"{where}: precision 16-mixed on the CPU runs float16 kernels emulated, about 70x slower than 32 "
                 "(measured, docs/devices.md); use 32 or bf16-mixed")
        info = distributed.initialise(dev)
        scaler = torch.amp.GradScaler(dev.type) if prec == "16-mixed" else None
        return cls(dev, prec, info, scaler, bool(channels_last))

    # ------------------------------------------------------------------ placement
    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def pin_memory(self) -> bool:
        """Whether host batches should be pinned (page-locked) for asynchronous copies."""
        return self.device.type == "cuda"

    def place(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` on the device (in place, returned), its 4-D weights channels-last when asked."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def to(self, x: Any) -> Any:
        """``x`` (a tensor, or anything with ``.to(device, non_blocking=...)``) on the device."""
        if x is None:
            return None
        return x.to(self.device, non_blocking=True)

    # ------------------------------------------------------------------ precision
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed-precision region for forward passes and losses (a no-op at precision 32)."""
        dtype = _AUTOCAST.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _no_autocast(self) -> contextlib.AbstractContextManager[Any]:
        # backward passes and optimiser steps run outside autocast, also when called inside an autocast
        # region (a refiner's step interleaves forwards, backwards and steps)
        if self.precision == "32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    def backward(self, loss: torch.Tensor) -> None:
        with self._no_autocast():
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, opt: torch.optim.Optimizer) -> None:
        """``opt.step()`` (skipped under 16-mixed when the gradients hold inf or NaN)."""
        with self._no_autocast():
            if self.scaler is not None:
                self.scaler.step(opt)
            else:
                opt.step()

    def update(self) -> None:
        """End of an iteration: adjust the loss scale (16-mixed)."""
        if self.scaler is not None:
            self.scaler.update()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The loss scaler's state, for checkpoints (empty unless 16-mixed)."""
        if self.scaler is None or not self.scaler.is_enabled():
            return {}
        st = self.scaler.state_dict()
        return {"amp.scale": torch.tensor(float(st["scale"])),
                "amp.growth_tracker": torch.tensor(int(st["_growth_tracker"]))}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.scaler is None or "amp.scale" not in tensors:
            return
        st = self.scaler.state_dict()
        st.update(scale=float(tensors["amp.scale"]), _growth_tracker=int(tensors["amp.growth_tracker"]))
        self.scaler.load_state_dict(st)

    # ------------------------------------------------------------------ data parallelism
    def wrap(self, module: torch.nn.Module, find_unused_parameters: bool = False) -> torch.nn.Module:
        """``module`` in DistributedDataParallel when this is one rank of several."""
        return distributed.wrap(module, self.device, find_unused_parameters)

    def mean(self, values: dict[str, Any]) -> dict[str, float]:
        """Logged numbers averaged over ranks (floats; one host sync)."""
        return distributed.mean_over_ranks(values)

    def close(self) -> None:
        distributed.barrier()
        distributed.shutdown()


@contextlib.contextmanager
def compute(device: str | None = "auto", precision: str = "32", deterministic: bool = False,
            where: str = "device", channels_last: bool = False) -> Iterator[Compute]:
    """:meth:`Compute.create`, leaving the process group on exit (after a barrier when all went well)."""
    ctx = Compute.create(device, precision, deterministic, where, channels_last)
    try:
        yield ctx
    except BaseException:
        distributed.shutdown()
        raise
    else:
        ctx.close()
