"""mtriage configs in simreal: the parts that map are translated, each part that does not gets one
clear line (an error when it would change what the run means, a note when it can be ignored).

Mapped: selectors ``Local`` (``source``), ``Youtube`` (``search_term``, ``uploaded_after``,
``uploaded_before``); analysers ``Frames`` (``fps``), ``ImageDedup`` (``method``, ``threshold``,
``dry``), ``KerasPretrained`` / ``ImageNet`` (a torchvision-format classifier file), ``Rank``;
``elements_in`` selector queries.
"""

from __future__ import annotations

import copy
from typing import Any

from simreal.errors import ConfigError

SELECTOR_ALIASES = {"Youtube": "Search", "YouTube": "Search", "Url": "Urls", "YtDlp": "Urls"}
ANALYSER_ALIASES = {"ImageDedup": "Dedup", "Classify": "Score", "Detect": "Score", "Segment": "Score",
                    "KerasPretrained": "Score", "ImageNet": "Score", "ImageNetClassifier": "Score"}
UNSUPPORTED_SELECTORS = {"Twitter": "twint no longer works", "FourChan": "not ported"}
UNSUPPORTED_ANALYSERS = {
    "ConvertAudio": "audio is out of scope", "ExtractAudio": "audio is out of scope",
    "ExtractTypes": "use select.config.extensions", "TwintToGephi": "not ported",
    "TorchHub": "nothing is downloaded at run time; use a simreal run or a classifier file with Score",
    "PytorchFasterRcnn": "use a simreal detect run with Score", "ProtestsPretrained": "not ported",
    "AnalysedFramesMeta": "outputs are always written (results/)", "Flatten": "outputs are always written",
}
# keys of the mtriage core or of components that do not change results here
IGNORED_KEYS = {"in_parallel": "stages always run in parallel (see workers)", "dev": "use workers: 0 to debug",
                "elements_in": "set elements_in at the top level"}
KERAS_MODELS = {"ResNet50": "resnet50"}


def _stage_name(stage: Any, i: int, where: str) -> str:
    if not isinstance(stage, dict) or "name" not in stage:
        raise ConfigError(f"{where}: analyse[{i}]: expected a mapping with 'name' (and 'config')")
    return str(stage["name"])


def translate(raw: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """``raw`` with mtriage names and keys mapped onto simreal's, and the notes for ignored parts."""
    data = copy.deepcopy(raw)
    notes: list[str] = []
    for legacy in ("phase", "module"):
        if legacy in data:
            raise ConfigError(f"{where}: {legacy}: the legacy single-phase mtriage format is not supported "
                              "(use select and analyse)")
    sel = data.get("select")
    if isinstance(sel, dict) and "name" in sel:
        name = str(sel["name"])
        if name in UNSUPPORTED_SELECTORS:
            raise ConfigError(f"{where}: select.name: mtriage selector {name!r} has no simreal equivalent "
                              f"({UNSUPPORTED_SELECTORS[name]}); use Local, Urls or Search")
        sel["name"] = SELECTOR_ALIASES.get(name, name)
        cfg = sel.setdefault("config", {}) or {}
        sel["config"] = cfg
        if sel["name"] == "Local" and isinstance(cfg, dict):
            if "source" in cfg:
                cfg["paths"] = [cfg.pop("source")]
            if cfg.pop("aggregate", None):
                notes.append(f"{where}: select.config.aggregate: ignored (every file is its own element)")
        if name in ("Youtube", "YouTube") and isinstance(cfg, dict):
            if "search_term" in cfg:
                cfg["query"] = cfg.pop("search_term")
            if cfg.pop("daily", None):
                notes.append(f"{where}: select.config.daily: ignored (one search; dates filter the results)")
    ein = data.get("elements_in")
    if isinstance(ein, list):
        out_q = []
        for i, q in enumerate(ein):
            q = str(q)
            head = q.split("/")[0]
            if "/" in q and head in (*SELECTOR_ALIASES, "Local", "Urls", "Search"):
                raise ConfigError(f"{where}: elements_in[{i}]: {q!r}: re-analysis starts from the selected media; "
                                  f"give the selector name ({head!r}) or a triage folder")
            out_q.append(SELECTOR_ALIASES.get(q, q))
        data["elements_in"] = out_q
    analyse = data.get("analyse")
    stages = [analyse] if isinstance(analyse, dict) else analyse
    if isinstance(stages, list):
        out = []
        for i, st in enumerate(stages):
            name = _stage_name(st, i, where)
            if name in UNSUPPORTED_ANALYSERS:
                raise ConfigError(f"{where}: analyse[{i}].name: mtriage analyser {name!r} has no simreal "
                                  f"equivalent ({UNSUPPORTED_ANALYSERS[name]})")
            st = dict(st)
            cfg = dict(st.get("config") or {})
            for key in list(cfg):
                if key in IGNORED_KEYS:
                    cfg.pop(key)
                    notes.append(f"{where}: analyse[{i}].config.{key}: ignored ({IGNORED_KEYS[key]})")
            if name == "Frames" and "fps" in cfg and isinstance(cfg["fps"], str):
                try:
                    cfg["fps"] = float(cfg["fps"])
                except ValueError:
                    pass
            if name in ("KerasPretrained", "ImageNet", "ImageNetClassifier"):
                cfg = _keras(cfg, i, where)
            st["name"] = ANALYSER_ALIASES.get(name, name)
            st["config"] = cfg
            out.append(st)
        data["analyse"] = out
    return data, notes


def _keras(cfg: dict[str, Any], i: int, where: str) -> dict[str, Any]:
    """KerasPretrained {model, labels} -> one torchvision-format classifier; the weights are a local file."""
    model = cfg.pop("model", "ResNet50")
    arch = KERAS_MODELS.get(str(model))
    if arch is None:
        raise ConfigError(f"{where}: analyse[{i}].config.model: {model!r} is not available "
                          f"(supported: {', '.join(KERAS_MODELS)}; or use a simreal run)")
    if "weights" not in cfg:
        raise ConfigError(f"{where}: analyse[{i}].config.weights: mtriage model {model!r} needs a local "
                          "torchvision-format ImageNet weights file and labels_file (nothing is downloaded)")
    keep = cfg.pop("labels", None)
    spec = {"arch": arch, **cfg}
    out: dict[str, Any] = {"models": [spec]}
    if keep:
        spec["keep"] = keep
    return out
