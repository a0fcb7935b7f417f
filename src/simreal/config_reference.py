"""The config reference: JSON schemas of the stage configs (``simreal config schema NAME``) and the
generated ``docs/config.md`` (``simreal config docs``; a test fails when the file is stale)."""

from __future__ import annotations

import importlib
import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from simreal.errors import ConfigError

CONFIGS: dict[str, tuple[str, str, str]] = {
    "render": ("simreal.render.spec", "SceneConfig", "`simreal render --config scene.yaml`"),
    "refine": ("simreal.refine.config", "RefinerConfig", "`simreal refine train --config refiner.yaml`"),
    "train": ("simreal.adapt.config", "TrainConfig", "`simreal train --config train.yaml`"),
    "anonymize": ("simreal.privacy.config", "AnonymizeConfig", "`simreal anonymize train --config anon.yaml`"),
    "audit": ("simreal.privacy.config", "AuditConfig", "`simreal anonymize audit --config audit.yaml`"),
    "triage": ("simreal.triage.config", "TriageConfig", "`simreal triage run triage.yaml`"),
    "faces_extract": ("simreal.faces.extract", "ExtractConfig", "`simreal faces extract --config extract.yaml`"),
    "faces_render": ("simreal.faces.render", "FaceRenderConfig", "`simreal faces render --config faces.yaml`"),
    "faces_words": ("simreal.faces.words", "WordsConfig", "`simreal faces run --words child.yaml`"),
}


def config_model(name: str) -> type[BaseModel]:
    if name not in CONFIGS:
        raise ConfigError(f"config: unknown config {name!r} (expected one of {', '.join(CONFIGS)})")
    module, attr, _ = CONFIGS[name]
    return getattr(importlib.import_module(module), attr)


def schema(name: str) -> dict[str, Any]:
    """The JSON schema of config ``name`` (validation mode: what a YAML file may contain)."""
    return config_model(name).model_json_schema()


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (list, tuple, dict):
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _default(f: FieldInfo) -> str:
    if f.default_factory is not None:
        value = f.default_factory()  # type: ignore[call-arg]
    elif f.default is PydanticUndefined:
        return "required"
    else:
        value = f.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        value = [v.model_dump(mode="json", exclude_defaults=True) for v in value]
    if isinstance(value, tuple):
        value = list(value)
    text = json.dumps(value, default=str)
    return f"`{text}`" if len(text) <= 40 else f"`{text[:37]}...`"


def _sections(model: type[BaseModel], prefix: str, out: list[tuple[str, type[BaseModel]]]) -> None:
    out.append((prefix, model))
    for key, f in model.model_fields.items():
        for sub in _models_in(f.annotation):
            _sections(sub, f"{prefix}.{key}" if prefix else key, out)


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    found: list[type[BaseModel]] = []
    for a in typing.get_args(tp):
        found += _models_in(a)
    return found


def markdown() -> str:
    """docs/config.md: one table per config section (key, type, default, description)."""
    lines = ["# Config reference", "",
             "Generated from the pydantic models by `simreal config docs --out docs/config.md`; do not edit by hand.",
             f"The JSON schema of each config: `simreal config schema {'|'.join(CONFIGS)}`.", ""]
    for name, (_, _, usage) in CONFIGS.items():
        model = config_model(name)
        lines += [f"## {name}", "", f"{(model.__doc__ or '').strip().splitlines()[0]} Used by {usage}.", ""]
        sections: list[tuple[str, type[BaseModel]]] = []
        _sections(model, "", sections)
        seen: set[tuple[str, type[BaseModel]]] = set()
        for prefix, sec in sections:
            if (prefix, sec) in seen:
                continue
            seen.add((prefix, sec))
            title = f"`{prefix}`" if prefix else "top level"
            doc = (sec.__doc__ or "").strip().splitlines()[0] if sec.__doc__ and prefix else ""
            lines += [f"### {name}: {title}", ""] + ([doc, ""] if doc else [])
            lines += ["| key | type | default | description |", "|---|---|---|---|"]
            for key, f in sec.model_fields.items():
                desc = (f.description or "").replace("|", "\\|").replace("\n", " ")
                lines.append(f"| `{key}` | {_type_name(f.annotation)} | {_default(f)} | {desc} |")
            lines.append("")
    return "\n".join(lines)


def undocumented() -> list[str]:
    """Config fields without a description (``config.section.key``): the reference must cover all."""
    missing = []
    for name in CONFIGS:
        sections: list[tuple[str, type[BaseModel]]] = []
        _sections(config_model(name), "", sections)
        for prefix, sec in sections:
            missing += [f"{name}:{prefix + '.' if prefix else ''}{k}" for k, f in sec.model_fields.items()
                        if not f.description]
    return sorted(set(missing))
