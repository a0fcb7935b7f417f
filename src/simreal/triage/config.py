"""The triage config (``simreal triage run triage.yaml``; see docs/triage.md).

A config names a ``folder``, where media come from (``select`` or ``elements_in``) and a chain of
``analyse`` stages, each ``{name, config}`` as in mtriage. mtriage configs are first translated by
:mod:`simreal.triage.compat`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from simreal.config import StrictModel, read_yaml, validate
from simreal.errors import ConfigError

# ----------------------------------------------------------------------------- selectors


class DownloadOptions(StrictModel):
    """How yt-dlp fetches media (URL lists and platform searches)."""

    format: str = Field("bv*[height<=480]/b[height<=480]/wv*/w",
                        description="yt-dlp format selector; video only by default (triage needs no audio)")
    retries: int = Field(3, ge=0, description="download retries per URL (yt-dlp 'retries')")
    timeout: float = Field(30.0, gt=0, description="socket timeout in seconds")
    max_filesize: int | None = Field(None, ge=1, description="skip media larger than this many bytes")
    rate_limit: int | None = Field(None, ge=1, description="download rate limit in bytes/s")
    sleep_interval: float = Field(0.0, ge=0, description="seconds to wait before each download (be polite)")


class LocalSelect(StrictModel):
    """Local files and folders (videos and images), recursively."""

    paths: list[str] = Field(..., min_length=1, description="files or folders to take media from")
    recursive: bool = Field(True, description="descend into sub-folders")
    extensions: list[str] | None = Field(
        None, description="only files with these extensions (default: every known video and image extension)")
    sniff: bool = Field(True, description="also take files whose first bytes say they are video or image media, "
                                          "whatever their extension")
    exclude: list[str] = Field([], description="glob patterns (on the path relative to its root) to leave out")


class UrlsSelect(StrictModel):
    """A list of media URLs fetched through yt-dlp (any site yt-dlp supports, or direct links)."""

    urls: list[str] = Field([], description="media or page URLs")
    url_file: str | None = Field(None, description="a text file with one URL per line ('#' starts a comment)")
    download: DownloadOptions = Field(default_factory=DownloadOptions, description="yt-dlp download options")

    @model_validator(mode="after")
    def _some(self) -> UrlsSelect:
        if not self.urls and not self.url_file:
            raise ValueError("give urls or url_file")
        return self


def _date(v: Any) -> _dt.date | None:
    if v is None or isinstance(v, _dt.date):
        return v.date() if isinstance(v, _dt.datetime) else v
    s = str(v).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return _dt.datetime.strptime(s[:10] if fmt == "%Y-%m-%d" else s, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"expected a date YYYY-MM-DD (or an ISO time), got {v!r}")


class SearchSelect(StrictModel):
    """A platform search through yt-dlp's search extractors, optionally limited to an upload date range."""

    query: str = Field(..., min_length=1, description="search terms")
    site: str = Field("ytsearch", description="yt-dlp search key: ytsearch (YouTube), ytsearchdate (YouTube, "
                                              "newest first), or any other yt-dlp '<key>N:query' search prefix")
    max_results: int = Field(50, ge=1, le=5000, description="search results to consider")
    uploaded_after: _dt.date | None = Field(None, description="keep media uploaded on or after this date")
    uploaded_before: _dt.date | None = Field(None, description="keep media uploaded on or before this date")
    download: DownloadOptions = Field(default_factory=DownloadOptions, description="yt-dlp download options")

    _dates = field_validator("uploaded_after", "uploaded_before", mode="before")(_date)


class LocalSelector(StrictModel):
    """`select: {name: Local, config: ...}` — local files and folders."""

    name: Literal["Local"] = Field(description="selector name")
    config: LocalSelect = Field(description="selector options")


class UrlsSelector(StrictModel):
    """`select: {name: Urls, config: ...}` — a list of URLs through yt-dlp."""

    name: Literal["Urls"] = Field(description="selector name")
    config: UrlsSelect = Field(description="selector options")


class SearchSelector(StrictModel):
    """`select: {name: Search, config: ...}` — a platform search through yt-dlp."""

    name: Literal["Search"] = Field(description="selector name")
    config: SearchSelect = Field(description="selector options")


Selector = Annotated[LocalSelector | UrlsSelector | SearchSelector, Field(discriminator="name")]

# ----------------------------------------------------------------------------- analysers


class FramesConfig(StrictModel):
    """Frame sampling with PyAV at any rate; frames stored as JPEG with their presentation time."""

    fps: float = Field(1.0, gt=0, description="frames per second to sample (fractional allowed: 0.2 = one every 5 s)")
    start: float = Field(0.0, ge=0, description="first sample time in seconds from the video start")
    end: float | None = Field(None, gt=0, description="stop sampling at this time in seconds (default: the end)")
    max_frames: int | None = Field(None, ge=1, description="at most this many frames per video")
    seek: Literal["auto", "always", "never"] = Field(
        "auto", description="seek to each sample time instead of decoding every frame: auto = when samples are "
                            "at least seek_min_interval seconds apart")
    seek_min_interval: float = Field(4.0, gt=0, description="sample spacing (s) from which 'auto' seeks")
    max_side: int | None = Field(None, ge=16, description="shrink frames whose longer side exceeds this (pixels)")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of stored frames")

    @model_validator(mode="after")
    def _range(self) -> FramesConfig:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class DedupConfig(StrictModel):
    """Near-duplicate frame removal by perceptual hash (ImageHash)."""

    method: Literal["phash", "dhash", "ahash", "whash"] = Field("phash", description="ImageHash hash function")
    hash_size: int = Field(8, ge=4, le=32, description="hash side (bits = hash_size**2)")
    threshold: int = Field(3, ge=0, description="Hamming distance at or below which a frame is a duplicate")
    scope: Literal["previous", "all"] = Field(
        "previous", description="compare with the previous kept frame, or with every kept frame of the video")
    dry: bool = Field(False, description="only mark duplicates (all frames are still scored)")


class ModelSpec(StrictModel):
    """One model: a simreal run folder, or a torchvision-format classifier file with its label list."""

    name: str | None = Field(None, description="name shown in outputs (default: the run folder or file name)")
    run: str | None = Field(None, description="a finished simreal run folder (classify, detect or segment)")
    weights: str | None = Field(None, description="a torchvision-format classifier state dict (.pth/.pt/"
                                                  ".safetensors) — with arch and labels")
    arch: Literal["resnet18", "resnet34", "resnet50"] = Field("resnet50", description="architecture of 'weights'")
    labels: list[str] | None = Field(None, description="'weights': the class names in output order")
    labels_file: str | None = Field(None, description="'weights': class names, one per line (instead of 'labels')")
    keep: list[str] | None = Field(None, description="store only these labels' scores (default: every label)")
    image_size: int = Field(224, ge=8, description="'weights' input side (centre crop)")
    resize: int = Field(256, ge=8, description="'weights': shorter side resized to this before the crop")
    mean: tuple[float, float, float] = Field((0.485, 0.456, 0.406), description="'weights' input normalisation")
    std: tuple[float, float, float] = Field((0.229, 0.224, 0.225), description="'weights' input normalisation")
    box_threshold: float = Field(0.05, ge=0, le=1, description="detectors: keep boxes scoring at least this")
    max_boxes: int = Field(20, ge=0, description="detectors: at most this many boxes per frame (best first)")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.run is None) == (self.weights is None):
            raise ValueError("give exactly one of run (a simreal run folder) or weights (a classifier file)")
        if self.weights is not None and not (self.labels or self.labels_file):
            raise ValueError("a classifier file needs its label list: labels or labels_file")
        if self.run is not None and (self.labels or self.labels_file):
            raise ValueError("labels/labels_file describe a classifier file; a run knows its labels (use keep)")
        if self.resize < self.image_size:
            raise ValueError(f"resize ({self.resize}) must be at least image_size ({self.image_size})")
        return self

    def display_name(self) -> str:
        if self.name:
            return self.name
        return Path(self.run).name if self.run else Path(str(self.weights)).stem


class ScoreConfig(StrictModel):
    """Image scoring with one or more models in one pass over the frames."""

    models: list[ModelSpec] = Field(..., min_length=1, description="models that score every kept frame")

    @model_validator(mode="before")
    @classmethod
    def _single(cls, data: Any) -> Any:
        # ``config: {run: runs/x}`` is shorthand for one model
        if isinstance(data, dict) and "models" not in data and ("run" in data or "weights" in data):
            return {"models": [data]}
        return data

    @model_validator(mode="after")
    def _unique(self) -> ScoreConfig:
        names = [m.display_name() for m in self.models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two models are called {dup[0]!r}; give them distinct 'name's")
        return self


RANK_METRICS = ("count", "max", "topk-mean", "fraction")


class RankConfig(StrictModel):
    """The ranked summary written at the end of a run."""

    by: Literal["count", "max", "topk-mean", "fraction"] = Field("count", description="ranking metric")
    threshold: float = Field(0.5, ge=0, le=1, description="score at or above which a frame counts as positive")
    k: int = Field(5, ge=1, description="k of topk-mean")


class FramesStage(StrictModel):
    """`{name: Frames, config: ...}` — frame sampling (PyAV)."""

    name: Literal["Frames"] = Field(description="stage name")
    config: FramesConfig = Field(default_factory=FramesConfig, description="stage options")


class DedupStage(StrictModel):
    """`{name: Dedup, config: ...}` — near-duplicate frame removal (ImageHash)."""

    name: Literal["Dedup"] = Field(description="stage name")
    config: DedupConfig = Field(default_factory=DedupConfig, description="stage options")


class ScoreStage(StrictModel):
    """`{name: Score, config: ...}` — scoring with one or more models."""

    name: Literal["Score"] = Field(description="stage name")
    config: ScoreConfig = Field(description="stage options")


class RankStage(StrictModel):
    """`{name: Rank, config: ...}` — the ranked summary."""

    name: Literal["Rank"] = Field(description="stage name")
    config: RankConfig = Field(default_factory=RankConfig, description="stage options")


Stage = Annotated[FramesStage | DedupStage | ScoreStage | RankStage, Field(discriminator="name")]
ORDER = {"Frames": 0, "Dedup": 1, "Score": 2, "Rank": 3}


class TriageConfig(StrictModel):
    """A triage run: where media come from, the analyse chain, and how to execute it."""

    folder: str = Field(..., min_length=1, description="the triage folder (created; reruns resume in it)")
    select: Selector | None = Field(None, description="where media come from: Local, Urls or Search")
    elements_in: list[str] | None = Field(
        None, description="re-analyse elements selected earlier: selector names of this folder (e.g. 'Local') "
                          "or paths of other triage folders")
    analyse: list[Stage] = Field(..., min_length=1, description="the chain: Frames, optional Dedup, Score, "
                                                                "optional Rank")
    workers: int | None = Field(None, ge=0, description="decoding processes (default: CPU count; 0 = all in "
                                                        "this process)")
    batch_size: int = Field(32, ge=1, description="frames per model forward pass")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    executor: Literal["local", "ray"] = Field("local", description="where decoding runs: local processes or Ray")
    address: str | None = Field(None, description="Ray cluster address (executor ray)")
    keep_frames: bool = Field(True, description="keep the JPEG frames (false: drop them once scored)")
    retry_failed: bool = Field(False, description="try elements that failed in an earlier run again")

    @field_validator("analyse", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    @field_validator("analyse", mode="after")
    @classmethod
    def _chain(cls, analyse: list[Any]) -> list[Any]:
        names = [s.name for s in analyse]
        for a, b in zip(names, names[1:], strict=False):
            if ORDER[b] < ORDER[a] or (a == b and a != "Score"):
                raise ValueError(f"stage {b} cannot follow {a} (order: Frames, Dedup, Score..., Rank)")
        if "Score" not in names and "Frames" not in names:
            raise ValueError("the chain has nothing to do (add Frames and Score stages)")
        models = [m.display_name() for s in analyse if isinstance(s, ScoreStage) for m in s.config.models]
        dup = sorted({n for n in models if models.count(n) > 1})
        if dup:
            raise ValueError(f"two models are called {dup[0]!r}; give them distinct 'name's")
        return analyse

    @model_validator(mode="after")
    def _source(self) -> TriageConfig:
        if (self.select is None) == (self.elements_in is None):
            raise ValueError("give exactly one of select or elements_in")
        return self

    # helpers -----------------------------------------------------------------
    @property
    def frames(self) -> FramesConfig:
        return next((s.config for s in self.analyse if isinstance(s, FramesStage)), FramesConfig())

    @property
    def dedup(self) -> DedupConfig | None:
        return next((s.config for s in self.analyse if isinstance(s, DedupStage)), None)

    @property
    def models(self) -> list[ModelSpec]:
        return [m for s in self.analyse if isinstance(s, ScoreStage) for m in s.config.models]

    @property
    def rank(self) -> RankConfig:
        return next((s.config for s in self.analyse if isinstance(s, RankStage)), RankConfig())


def resolve_paths(cfg: TriageConfig, base: Path) -> TriageConfig:
    """Paths in the config made absolute against ``base`` (the config file's folder)."""

    def absolute(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    data = cfg.model_dump(mode="json")
    data["folder"] = absolute(data["folder"])
    sel = data.get("select")
    if sel and sel["name"] == "Local":
        sel["config"]["paths"] = [absolute(p) for p in sel["config"]["paths"]]
    if sel and sel["name"] == "Urls" and sel["config"].get("url_file"):
        sel["config"]["url_file"] = absolute(sel["config"]["url_file"])
    if data.get("elements_in"):
        data["elements_in"] = [e if e in ("Local", "Urls", "Search") else absolute(e) for e in data["elements_in"]]
    for st in data["analyse"]:
        if st["name"] == "Score":
            for m in st["config"]["models"]:
                for key in ("run", "weights", "labels_file"):
                    if m.get(key):
                        m[key] = absolute(m[key])
    return TriageConfig.model_validate(data)


def load_triage_config(source: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None,
                       warn: Any = None) -> TriageConfig:
    """A validated config from a YAML path or a dict (mtriage configs are translated first).
    Relative paths are taken from the config file's folder (the working folder for a dict);
    ``overrides`` (dotted keys) apply after translation; ``warn(line)`` receives one line per ignored
    mtriage key."""
    from simreal.triage.compat import translate

    if isinstance(source, dict):
        raw, where, base = dict(source), "config", Path.cwd()
    else:
        raw, where, base = read_yaml(source), str(source), Path(source).resolve().parent
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    raw, notes = translate(raw, where)
    for note in notes:
        if warn is not None:
            warn(note)
    for key, value in (overrides or {}).items():
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    cfg = validate(TriageConfig, raw, where)
    return resolve_paths(cfg, base)
