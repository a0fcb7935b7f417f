"""Options shared by every command, so they are spelled and mean the same everywhere."""

from __future__ import annotations

import typer

QUIET_HELP = "No progress bar (the log file in the output folder is still written)."
SET_HELP = "Override a config key (YAML value), e.g. --set optim.steps=200; repeatable."


def quiet_option() -> bool:
    """``-q/--quiet``: hide progress bars."""
    return typer.Option(False, "--quiet", "-q", help=QUIET_HELP)


def set_option(example: str = "optim.steps=200") -> list[str]:
    """``--set KEY=VALUE`` dotted-key config overrides."""
    return typer.Option([], "--set", metavar="KEY=VALUE",
                        help=f"Override a config key (YAML value), e.g. --set {example}; repeatable.")


ARGV: list[str] = []
"""The arguments of the running ``simreal`` command (set by :func:`simreal.cli.main.main`), so ``--nproc``
can start the same command in several processes."""

NPROC_HELP = ("Data-parallel training in N processes on this machine (torchrun: gloo on the CPU, NCCL on CUDA with "
              "one GPU each); the config's batch is the global batch. Several machines: docs/devices.md.")


def device_option(default: str | None = "auto") -> str | None:
    """``--device auto|cpu|cuda|cuda:N|mps`` for every command that runs a network (resolved by
    :func:`simreal.runtime.device.resolve_device`). Commands with a config use ``default=None``: the
    config's ``device`` unless given."""
    from simreal.runtime.device import DEVICE_HELP

    suffix = "" if default is not None else " Default: the config's device (auto)."
    return typer.Option(default, "--device", metavar="DEVICE", help=DEVICE_HELP + suffix)


def precision_option() -> str | None:
    """``--precision 32|16-mixed|bf16-mixed`` for training commands (default: the config's)."""
    from simreal.runtime.device import PRECISION_HELP

    return typer.Option(None, "--precision", metavar="PRECISION", help=PRECISION_HELP + " Default: the config's.")


def nproc_option() -> int:
    """``--nproc N``: data-parallel training in N local processes."""
    return typer.Option(1, "--nproc", min=1, help=NPROC_HELP)


def launch_if_parallel(nproc: int) -> None:
    """With ``--nproc N`` > 1: run this same command (without ``--nproc``) in N processes under torchrun, then
    exit with their exit code. Returns only when there is nothing to launch."""
    if nproc <= 1:
        return
    from simreal.runtime.distributed import launch

    args, skip = [], False
    for a in ARGV:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    raise typer.Exit(launch(args, nproc))
