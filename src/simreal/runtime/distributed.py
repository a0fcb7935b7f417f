"""Data-parallel training across processes: one process per device, launched by ``torchrun``.

``simreal train ... --nproc N`` (and ``refine train``) starts ``torchrun --standalone`` in this
process (:func:`launch`); on several machines run ``torchrun --nnodes ... -m simreal train ...``
yourself. Every worker reads its place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins one process group: NCCL when the device is a
GPU, gloo on the CPU.

The contract (see docs/devices.md):

* a batch size in a config is the *global* batch; each of the N ranks takes its 1/N share
  (:func:`shard`), drawn from the same per-step draw as a single process, so a run is the same
  experiment whatever N is, and resumes across a changed N;
* models are wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (:func:`wrap`), which
  averages gradients over ranks in backward;
* rank 0 alone writes (run store, logs, metrics, samples, checkpoints, progress bar); the others read
  the run folder only (:func:`on_main` runs the folder set-up on rank 0 and hands its outcome, or its
  error, to every rank);
* a worker dies with its launcher (Linux ``PR_SET_PDEATHSIG``), and torchrun stops every worker when
  one fails, so a killed rank stops the job; rerunning the command resumes from the last checkpoint.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from simreal.errors import ConfigError, SimrealError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
# Set by :func:`launch` for its workers: a rank that stops on bad input writes its one line there.
ERROR_DIR_ENV = "SIMREAL_LAUNCH_ERRORS"


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` (``local_rank`` on its machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from None


def from_env() -> DistInfo:
    """This process's place as torchrun describes it (a single process when nothing is set)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} WORLD_SIZE={world}: not a valid place in a process group")
    return DistInfo(rank, world, local)


def current() -> DistInfo:
    """The process group this process has joined (a single process before :func:`initialise`)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", dist.get_rank()))
    return DistInfo()


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def initialise(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (no-op in a single process or when joined already)."""
    import datetime

    import torch.distributed as dist

    info = from_env()
    if not info.active:
        return info
    if device.type == "mps":
        raise ConfigError("--device mps: data-parallel training (--nproc, torchrun) runs on CUDA or the CPU only")
    if not dist.is_initialized():
        _die_with_parent()
        minutes = _env_int("SIMREAL_DIST_TIMEOUT_MIN", 30)
        dist.init_process_group(backend_for(device), timeout=datetime.timedelta(minutes=minutes),
                                **({"device_id": device} if device.type == "cuda" else {}))
    return current()


def shutdown() -> None:
    """Leave the process group (after a last barrier, so no rank leaves while another still writes)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its launcher dies (a SIGKILLed torchrun cannot stop its workers)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - no libc.so.6 (musl): the worker outlives a killed launcher
        return
    if os.getppid() == 1:  # the launcher died before prctl took effect
        os._exit(1)


# ------------------------------------------------------------------ collectives
def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and give its result to every rank; a SimrealError raised there is raised
    on every rank (same class and message), so no rank waits for a rank that has stopped."""
    info = current()
    outcome: tuple[str, Any] = ("wait", None)
    failure: BaseException | None = None
    if info.is_main:
        try:
            outcome = ("ok", fn())
        except SimrealError as exc:
            outcome, failure = ("error", (type(exc), str(exc))), exc
        except BaseException as exc:
            outcome, failure = ("error", (RuntimeError, f"rank 0 failed: {type(exc).__name__}: {exc}")), exc
    outcome = broadcast_object(outcome)
    if failure is not None:
        raise failure
    if outcome[0] == "error":
        cls, message = outcome[1]
        raise cls(message)
    return outcome[1]


def mean_over_ranks(values: Mapping[str, Any]) -> dict[str, float]:
    """Numbers (floats or 0-dim tensors) averaged over ranks, as floats; one collective for all of them.
    Every rank must call it with the same keys. Equal per-rank batches make the mean of per-rank means
    the mean over the global batch."""
    import torch

    keys = list(values)
    if not keys:
        return {}
    vals = [values[k] for k in keys]
    dev = next((v.device for v in vals if isinstance(v, torch.Tensor)), torch.device("cpu"))
    t = torch.stack([v.detach().float().to(dev).reshape(()) if isinstance(v, torch.Tensor)
                     else torch.tensor(float(v), device=dev) for v in vals])
    info = current()
    if info.active:
        import torch.distributed as dist

        if dist.get_backend() == "nccl" and t.device.type != "cuda":
            t = t.cuda()
        dist.all_reduce(t)
        t = t / info.world_size
    return dict(zip(keys, t.cpu().tolist(), strict=True))


# ------------------------------------------------------------------ sharding and models
def shard_size(global_size: int, info: DistInfo, key: str) -> int:
    """Each rank's share of a global batch of ``global_size``; ConfigError naming ``key`` when N does not
    divide it."""
    if global_size % info.world_size:
        raise ConfigError(f"{key}: {global_size} is not divisible by the {info.world_size} processes (it is the "
                          "global batch, split evenly over ranks)")
    return global_size // info.world_size


def shard(items: Any, info: DistInfo) -> Any:
    """This rank's contiguous slice of a global batch (a sequence or an array of equal shares)."""
    n = len(items) // info.world_size
    return items[info.rank * n:(info.rank + 1) * n]


def wrap(module: torch.nn.Module, device: torch.device, find_unused_parameters: bool = False) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when this process is one of several (as is otherwise).

    Buffers are not broadcast at each forward (``broadcast_buffers=False``): BatchNorm statistics are
    synchronised by SyncBatchNorm instead (or stay per rank; rank 0's are saved), and a forward pass on
    rank 0 alone (sample grids, validation) then needs no other rank."""
    info = current()
    if not info.active or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    import inspect

    # torch >= 2.13 renames broadcast_buffers (the initial sync of equal buffers is harmless)
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
               inspect.signature(DistributedDataParallel.__init__).parameters else {"broadcast_buffers": False})
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters,
                                   **no_sync)


def unwrap(module: Any) -> Any:
    """The module inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    from torch.nn.parallel import DistributedDataParallel

    return module.module if isinstance(module, DistributedDataParallel) else module


# ------------------------------------------------------------------ launching
def root_failure(failures: Mapping[int, Any]) -> int:
    """The rank that stopped a job, from torchrun's failures (``exitcode``, ``timestamp`` per rank): a rank
    killed by a signal other than torchrun's SIGTERM first, then one that failed by itself, then the ranks
    that lost a peer (exit 1) or were stopped by torchrun (SIGTERM); the earliest among equals."""

    def order(rank: int) -> tuple[int, float, int]:
        code = failures[rank].exitcode
        kind = 0 if code < 0 and code != -15 else 1 if code not in (1, -15) else 2 if code == 1 else 3
        return kind, failures[rank].timestamp, rank

    return min(failures, key=order)


def launch(args: list[str], nproc: int) -> int:
    """Run ``python -m simreal ARGS`` in ``nproc`` processes on this machine with torchrun (in this
    process: killing it kills the workers). Returns the exit code: 0, the workers' common exit code (2 for
    bad input, whose one-line message rank 0 has printed), or 1 with one line naming the failed rank."""
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if from_env().active:
        raise ConfigError("--nproc: this process is already one of a torchrun job; drop --nproc")
    # CPU ranks share the cores (torchrun would give each one thread)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    parser = get_args_parser()
    targs = parser.parse_args(["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "--module",
                               "simreal", *args])
    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the failure table: one line of ours instead
    errors = Path(tempfile.mkdtemp(prefix="simreal-launch-"))
    os.environ[ERROR_DIR_ENV] = str(errors)  # ranks leave their bad-input line here (cli.main)
    try:
        run(targs)
    except ChildFailedError as exc:
        codes = {rank: f.exitcode for rank, f in exc.failures.items()}
        rank = root_failure(exc.failures)
        said = {int(f.stem[4:]): f.read_text().strip() for f in errors.glob("rank*.txt")}
        if said:  # bad input: one rank's line, whichever ranks torchrun stopped before they got there
            print(said.get(rank) or said[min(said)], file=sys.stderr)
            return 2
        code = codes[rank]
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        print(f"simreal: error: rank {rank} of {nproc} stopped ({how}); every rank was stopped. Rerun the same "
              "command to resume from the last checkpoint.", file=sys.stderr)
        return 1
    finally:
        quiet.setLevel(level)
        os.environ.pop(ERROR_DIR_ENV, None)
        shutil.rmtree(errors, ignore_errors=True)
    return 0


def gather_objects(obj: T) -> list[T] | None:
    """Every rank's ``obj`` as a list on rank 0 (None on the others); ``[obj]`` in a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out
