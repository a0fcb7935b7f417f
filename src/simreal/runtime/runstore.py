"""The one run store (DESIGN "Run"), used by ``train``, ``refine train`` and every later stage.

A run folder holds:

* ``run.json``: what kind of run (``train``, ``refine``, ...), the simreal version, when it was
  created, and stage facts (e.g. channels, datasets);
* ``config.yaml``: the resolved config; a rerun with a different config is refused, except for keys
  the stage declares *volatile* (settings that cannot change the result, e.g. ``device``);
* ``checkpoints/``: ``step_NNNNNNNN.safetensors`` (every module's state under ``<module>.``, every
  optimiser's state under ``opt.<name>.``, extra tensors under ``extra.``) and ``step_NNNNNNNN.json``
  (metadata), written in that order with temporary names, so a checkpoint without its JSON is
  unfinished and ignored; the last ``keep`` are kept. Nothing is pickled. Named models (``final``,
  ``best``) are ``<name>.safetensors`` + ``<name>.json``;
* ``metrics.jsonl``: one JSON record per line; a torn last line (a killed writer) is skipped;
* ``samples/``: PNG grids; ``log.txt``; ``report.md`` with PNG plots.

In a data-parallel job rank 0 owns the folder; the other ranks hold a :meth:`RunStore.follower`, which
reads the config and checkpoints and writes nothing (its writing methods do nothing), so the loops call
the store alike on every rank and the folder is what a single process would have written.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from simreal.errors import RunError, WeightsError
from simreal.runtime.io import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text

RUN_JSON = "run.json"
_CKPT = re.compile(r"^step_(\d{8})\.json$")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Checkpoint:
    """A finished checkpoint: its step, tensor file and metadata."""

    step: int
    path: Path  # the .safetensors file
    meta: dict[str, Any]


def _version() -> str:
    from simreal import __version__

    return __version__


def _drop(tree: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out = json.loads(json.dumps(tree))
    for key in keys:
        node: Any = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b or a[k] != b[k]:
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
    return path or "<root>"


class RunStore:
    """One run folder. Open an existing run with :meth:`open`; start or resume one with :meth:`prepare`."""

    def __init__(self, root: str | Path, info: dict[str, Any], writable: bool = True) -> None:
        self.root = Path(root)
        self.info = info
        self.kind = str(info.get("kind"))
        self.ck = self.root / "checkpoints"
        self.writable = writable

    def follower(self) -> RunStore:
        """A read-only view of this run for the ranks other than 0 of a data-parallel job: it reads the
        config and checkpoints; its writing methods do nothing."""
        return RunStore(self.root, dict(self.info), writable=False)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | Path, kind: str | None = None) -> RunStore:
        """An existing run folder (of ``kind`` when given); RunError naming the folder otherwise."""
        root = Path(root)
        if not root.is_dir():
            raise RunError(f"{root}: run folder not found")
        path = root / RUN_JSON
        if not path.is_file():
            raise RunError(f"{root}: not a simreal run folder (no {RUN_JSON})")
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{path}: unreadable ({exc})") from None
        if not isinstance(info, dict) or "kind" not in info:
            raise RunError(f"{path}: not a simreal run description (no 'kind')")
        if kind is not None and info["kind"] != kind:
            raise RunError(f"{root}: holds a run of kind {info['kind']!r}, expected a {kind!r} run")
        return cls(root, info)

    @classmethod
    def prepare(cls, root: str | Path, kind: str, config: BaseModel, info: dict[str, Any] | None = None,
                volatile: Iterable[str] = ()) -> tuple[RunStore, bool]:
        """Start a run in ``root`` (new or empty folder) or resume the run there when it is of the same
        kind and its config equals ``config`` up to the ``volatile`` keys. Returns (store, resumed)."""
        root = Path(root)
        volatile = tuple(volatile)
        new = config.model_dump(mode="json")
        if (root / RUN_JSON).is_file():
            store = cls.open(root, kind)
            old = store.read_config_dict()
            if _drop(old, volatile) != _drop(new, volatile):
                where = _first_difference(_drop(old, volatile), _drop(new, volatile))
                raise RunError(f"{root}: holds a {kind} run with a different config (first difference: {where}); "
                               "rerun with the run's config to resume, or use a new --out")
            if old != new:  # only volatile keys changed: record the config this session runs with
                atomic_write_text(root / "config.yaml", yaml.safe_dump(new, sort_keys=False))
            return store, True
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise RunError(f"{root}: exists and is not a simreal run folder; choose another --out")
        root.mkdir(parents=True, exist_ok=True)
        doc = {"kind": kind, "simreal_version": _version(),
               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **(info or {})}
        atomic_write_text(root / "config.yaml", yaml.safe_dump(new, sort_keys=False))
        atomic_write_json(root / RUN_JSON, doc)  # last: a folder without run.json is not a run yet
        return cls(root, doc), False

    def update_info(self, **values: Any) -> None:
        """Add facts to ``run.json`` (e.g. what was found in the data on the first start)."""
        self.info.update(values)
        if not self.writable:
            return
        atomic_write_json(self.root / RUN_JSON, self.info)

    def read_config_dict(self) -> dict[str, Any]:
        path = self.root / "config.yaml"
        if not path.is_file():
            raise RunError(f"{path}: run config not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RunError(f"{path}: invalid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise RunError(f"{path}: expected a mapping")
        return data

    def config(self, model: type[M]) -> M:
        """The run's resolved config validated as ``model``."""
        from simreal.config import validate
        from simreal.errors import ConfigError

        try:
            return validate(model, self.read_config_dict(), str(self.root / "config.yaml"))
        except ConfigError as exc:
            raise RunError(str(exc)) from None

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, step: int, modules: dict[str, Any], optimizers: dict[str, Any] | None = None,
                        extra: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                        keep: int = 2) -> Checkpoint:
        """Write checkpoint ``step`` (tensors, then JSON) and delete all but the last ``keep``."""
        from safetensors.torch import save_file

        stem = self.ck / f"step_{step:08d}"
        if not self.writable:
            return Checkpoint(int(step), stem.with_suffix(".safetensors"), dict(meta or {}))
        tensors = module_tensors(modules)
        tensors.update(optimizer_tensors(optimizers or {}))
        tensors.update({f"extra.{k}": _tensor(v) for k, v in (extra or {}).items()})
        self.ck.mkdir(parents=True, exist_ok=True)
        with atomic_path(stem.with_suffix(".safetensors")) as tmp:
            save_file(tensors, str(tmp), metadata={"kind": self.kind})
        doc = {"step": int(step), "kind": self.kind, "modules": sorted(modules),
               "optimizers": sorted(optimizers or {}),
               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **(meta or {})}
        atomic_write_json(stem.with_suffix(".json"), doc)
        for old in self.checkpoints()[:-keep] if keep > 0 else []:
            old.path.with_suffix(".json").unlink(missing_ok=True)
            old.path.unlink(missing_ok=True)
        return Checkpoint(int(step), stem.with_suffix(".safetensors"), doc)

    def checkpoints(self) -> list[Checkpoint]:
        """Finished checkpoints, oldest first."""
        if not self.ck.is_dir():
            return []
        out = []
        for p in self.ck.iterdir():
            m = _CKPT.match(p.name)
            if m and p.with_suffix(".safetensors").is_file():
                try:
                    meta = json.loads(p.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError):
                    continue  # torn metadata: not a finished checkpoint
                out.append(Checkpoint(int(m.group(1)), p.with_suffix(".safetensors"), meta))
        return sorted(out, key=lambda c: c.step)

    def latest_checkpoint(self) -> Checkpoint | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def load_checkpoint(self, ck: Checkpoint, modules: dict[str, Any], optimizers: dict[str, Any] | None = None,
                        map_location: Any = "cpu") -> dict[str, Any]:
        """Load ``ck`` into ``modules`` (and ``optimizers``); returns its extra tensors."""
        tensors = read_tensors(ck.path, map_location)
        for name, module in modules.items():
            load_module(module, _sub(tensors, f"{name}."), f"{ck.path} ({name})")
        for name, opt in (optimizers or {}).items():
            load_optimizer(opt, _sub(tensors, f"opt.{name}."), f"{ck.path} (optimiser {name})")
        return _sub(tensors, "extra.")

    # ------------------------------------------------------------------ named models
    def save_model(self, name: str, module: Any, meta: dict[str, Any]) -> Path:
        """``checkpoints/<name>.safetensors`` (the module's state dict) + ``<name>.json``."""
        if not self.writable:
            return self.model_path(name)
        return save_model(self.ck / f"{name}.safetensors", module, meta)

    def model_path(self, name: str) -> Path:
        return self.ck / f"{name}.safetensors"

    def has_model(self, name: str) -> bool:
        return self.model_path(name).is_file() and self.model_path(name).with_suffix(".json").is_file()

    def load_model_state(self, name: str, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
        """(state dict, metadata) of a named model; RunError when it is missing."""
        path = self.model_path(name)
        if not self.has_model(name):
            raise RunError(f"{self.root}: run has no {name} model yet ({path.relative_to(self.root)})")
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return read_tensors(path, map_location), meta

    # ------------------------------------------------------------------ metrics, samples, logs
    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    def log_metrics(self, rec: dict[str, Any]) -> None:
        """Append one record (flushed, so a killed run loses at most the line being written)."""
        if not self.writable:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record; a torn (unparseable) line is skipped."""
        return read_jsonl(self.metrics_path)

    def truncate_metrics(self, step: int, key: str = "step") -> None:
        """Keep records with ``rec[key] <= step`` (drops what was logged after the checkpoint a resumed
        run restarts from, and any torn line)."""
        if not self.writable or not self.metrics_path.is_file():
            return
        recs = [r for r in self.read_metrics() if int(r.get(key, 0)) <= step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in recs))

    def save_sample(self, name: str, png: bytes) -> Path:
        path = self.root / "samples" / name
        if not self.writable:
            return path
        atomic_write_bytes(path, png)
        return path

    def logger(self, name: str) -> Any:
        """A logger appending to ``log.txt`` (close it with :func:`simreal.runtime.progress.close_logger`);
        a follower's logger writes nowhere."""
        from simreal.runtime.progress import folder_logger

        if not self.writable:
            import logging

            quiet = logging.getLogger(f"simreal.follower.{name}")
            quiet.propagate = False
            if not quiet.handlers:
                quiet.addHandler(logging.NullHandler())
            return quiet
        return folder_logger(self.root, name, "log.txt")


# ---------------------------------------------------------------------- tensors
def _tensor(v: Any) -> Any:
    import torch

    t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
    return t.detach().to("cpu").contiguous().clone()


def module_tensors(modules: dict[str, Any]) -> dict[str, Any]:
    """Every module's state dict under ``<name>.`` (CPU copies: checkpoints are device-agnostic)."""
    return {f"{name}.{k}": _tensor(v) for name, m in modules.items() for k, v in m.state_dict().items()}


def optimizer_tensors(optimizers: dict[str, Any]) -> dict[str, Any]:
    """Optimiser states as tensors ``opt.<name>.<param index>.<key>`` (hyper-parameters are not stored:
    they come from the config and the schedule)."""
    out = {}
    for name, opt in optimizers.items():
        for idx, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                out[f"opt.{name}.{idx}.{k}"] = _tensor(v)
    return out


def _sub(tensors: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def read_tensors(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable checkpoint tensors ({exc})") from None


def load_module(module: Any, state: dict[str, Any], where: str) -> None:
    """Load a complete state dict; WeightsError naming the first keys that do not fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        raise WeightsError(f"{where}: checkpoint does not fit the model (missing {missing[:2]}, unexpected "
                           f"{unexpected[:2]}, mis-shaped {bad[:2]})")
    module.load_state_dict(state)


def load_optimizer(opt: Any, state: dict[str, Any], where: str) -> None:
    per: dict[int, dict[str, Any]] = {}
    for k, v in state.items():
        idx, key = k.split(".", 1)
        per.setdefault(int(idx), {})[key] = v
    sd = opt.state_dict()
    n_params = sum(len(g["params"]) for g in sd["param_groups"])
    if per and max(per) >= n_params:
        raise WeightsError(f"{where}: optimiser state for {max(per) + 1} parameters, the optimiser has {n_params}")
    # Optimizer.load_state_dict moves state tensors to their parameter's device: a CPU checkpoint
    # resumes on a GPU and back
    sd["state"] = per
    try:
        opt.load_state_dict(sd)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise WeightsError(f"{where}: optimiser state does not fit ({exc})") from None


def save_model(path: str | Path, module: Any, meta: dict[str, Any]) -> Path:
    """A module's state dict as safetensors (metadata embedded too) plus a JSON file beside it."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp:
        save_file({k: _tensor(v) for k, v in module.state_dict().items()}, str(tmp),
                  metadata={"simreal": json.dumps(meta)[:60000]})
    atomic_write_json(p.with_suffix(".json"), meta)
    return p


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; unparseable lines (a torn last line) are skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
