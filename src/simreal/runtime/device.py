"""One device policy for every command that runs a network: ``auto | cpu | cuda | cuda:N | mps``.

``auto`` picks CUDA when available, else Apple's MPS, else the CPU. Asking for a device that does
not exist raises :class:`~simreal.errors.ConfigError` (the CLI prints one line and exits 2).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from simreal.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_HELP = "Device: auto (CUDA if available, else MPS, else CPU), cpu, cuda, cuda:N or mps."
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PRECISIONS: tuple[str, ...] = ("32", "16-mixed", "bf16-mixed")
PRECISION_HELP = ("Numeric precision: 32 (float32), 16-mixed (float16 autocast + gradient scaling) or bf16-mixed "
                  "(bfloat16 autocast); mixed precision is meant for CUDA.")


def resolve_device(spec: str | None = "auto", where: str = "--device") -> torch.device:
    """The torch device for ``spec``; ConfigError naming ``where`` if it is malformed or absent here."""
    import torch

    s = (spec or "auto").strip().lower()
    if not DEVICE_PATTERN.match(s):
        raise ConfigError(f"{where}: {spec!r} is not a device (expected auto, cpu, cuda, cuda:N or mps)")
    if s == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if s == "cpu":
        return torch.device("cpu")
    if s == "mps":
        if not _mps_available():
            raise ConfigError(f"{where}: mps was asked for but this machine has no MPS device")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise ConfigError(f"{where}: {s} was asked for but this machine has no CUDA device "
                          "(use --device cpu or auto)")
    index = int(s.split(":")[1]) if ":" in s else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"{where}: {s} does not exist (this machine has {count} CUDA device(s): "
                          f"cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """The device types this machine has: ``cpu``, plus ``cuda`` and ``mps`` when present."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (for timing; a no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def forked_rng(device: torch.device) -> AbstractContextManager[Any]:
    """``torch.random.fork_rng`` for the CPU and ``device``'s own generator (CUDA or MPS): code inside may
    reseed freely and the caller's random streams are as they were afterwards."""
    import torch

    if device.type in ("cuda", "mps"):
        return torch.random.fork_rng(devices=[device], device_type=device.type)
    return torch.random.fork_rng(devices=[], device_type="cpu")
