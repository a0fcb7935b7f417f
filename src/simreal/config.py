"""Config loading shared by CLI and API: YAML (safe_load) into pydantic models, with errors that
name the file and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simreal.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line: ``source: key.path: message`` for the first error (and how many more)."""
    errs = exc.errors()
    first = errs[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{source}: {_loc(tuple(loc))}: {msg}{more}"


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file with ``yaml.safe_load``; a clear error names the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}:{where}: invalid YAML ({problem})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None


def validate(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` against ``model``; raise ConfigError naming ``source`` and the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(model: type[M], path: str | Path | M | dict[str, Any] | None,
                overrides: dict[str, Any] | None = None) -> M:
    """A validated config from a YAML ``path``, a config object, a plain dict or None (the defaults),
    with dotted-key ``overrides`` applied (``{"optim.steps": 200}``)."""
    data: dict[str, Any] = {}
    source = "defaults"
    if isinstance(path, BaseModel):
        if not isinstance(path, model):
            raise ConfigError(f"config: expected a {model.__name__}, got a {type(path).__name__}")
        if not overrides:
            return path
        data, source = path.model_dump(mode="json"), f"{model.__name__} object"
    elif isinstance(path, dict):
        data, source = json.loads(json.dumps(path)), "config dict"
    elif path is not None:
        raw = read_yaml(path)
        source = str(path)
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
        data = raw or {}
    for key, value in (overrides or {}).items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return validate(model, data, source)


def dump_config(cfg: BaseModel) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set key.path=value`` strings (values parsed as YAML) to a dict for :func:`load_config`."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value (e.g. optim.steps=200)")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
    return out


DEVICE_DESCRIPTION = ("where networks run: auto (CUDA if available, else MPS, else CPU), cpu, cuda, cuda:N or mps; "
                      "a run may resume on another device")
PRECISION_DESCRIPTION = ("32 (float32), 16-mixed (float16 autocast + gradient scaling) or bf16-mixed (bfloat16 "
                         "autocast); mixed precision is meant for CUDA")
DETERMINISTIC_DESCRIPTION = ("deterministic algorithms on the GPU (torch.use_deterministic_algorithms, cuDNN "
                             "deterministic, no cuDNN autotuning): slower; the CPU is deterministic anyway "
                             "(docs/devices.md)")


CHANNELS_LAST_DESCRIPTION = ("networks in channels-last memory (NHWC): the same results to float rounding, "
                             "faster convolutions on CPUs (oneDNN; 1.2-1.5x measured, docs/devices.md) and on "
                             "GPUs with tensor cores")


class ComputeSettings(StrictModel):
    """Execution settings shared by the training configs (``device``, ``precision``, ``deterministic``,
    ``channels_last``): a run may resume with other values (they are volatile keys of the run store)."""

    device: str = Field("auto", description=DEVICE_DESCRIPTION)
    precision: Literal["32", "16-mixed", "bf16-mixed"] = Field("32", description=PRECISION_DESCRIPTION)
    deterministic: bool = Field(False, description=DETERMINISTIC_DESCRIPTION)
    channels_last: bool = Field(False, description=CHANNELS_LAST_DESCRIPTION)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        from simreal.runtime.device import DEVICE_PATTERN

        s = str(v).strip().lower()
        if not DEVICE_PATTERN.match(s):
            raise ValueError(f"{v!r} is not a device (expected auto, cpu, cuda, cuda:N or mps)")
        return s

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, v: Any) -> Any:
        return "32" if v in (32, "32-true", "fp32", "float32") else str(v) if isinstance(v, int) else v


COMPUTE_VOLATILE = ("device", "precision", "deterministic", "channels_last")
"""Keys of :class:`ComputeSettings`: they do not define the experiment, so a run resumes with other values."""
