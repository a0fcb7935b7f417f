"""The per-child words file (``child.yaml``): which expression or gesture stands for which word,
how the voice sounds, and how long an expression must be held. See docs/faces.md."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from simreal.config import StrictModel, load_config
from simreal.faces.errors import FacesError
from simreal.runtime.io import atomic_write_text


class VoiceConfig(StrictModel):
    """espeak-ng settings for words without a recorded voice file."""

    voice: str = Field("en", min_length=1, description="espeak-ng voice (language) name, e.g. en, en-us, fr, de.")
    speed: int = Field(140, ge=80, le=450, description="Speaking rate in words per minute.")
    pitch: int = Field(50, ge=0, le=99, description="Pitch, 0-99.")
    amplitude: int = Field(100, ge=0, le=200, description="Loudness, 0-200.")


class TimingConfig(StrictModel):
    """When a score stream counts as an expression (hysteresis), for every word unless overridden."""

    on_score: float = Field(0.6, gt=0.0, le=1.0, description=(
        "Score at or above which an expression starts being held (not named 'on': YAML reads on/off as booleans)."))
    off_score: float = Field(0.4, ge=0.0, le=1.0, description=(
        "Score at or below which a held expression is let go (between off_score and on_score it stays as it is)."))
    hold_s: float = Field(0.5, ge=0.0, description="Seconds an expression must be held before its word is spoken.")
    rearm_s: float = Field(0.3, ge=0.0, description=(
        "Seconds the score must stay at or below off_score before the same expression can speak again."))
    cooldown_s: float = Field(1.5, ge=0.0, description="After any word, no other word for this many seconds.")

    @model_validator(mode="after")
    def _order(self) -> TimingConfig:
        if self.off_score > self.on_score:
            raise ValueError(f"off_score ({self.off_score}) must not exceed on_score ({self.on_score})")
        return self


class WordEntry(StrictModel):
    """One expression's word."""

    word: str = Field(..., min_length=1, description="The word or phrase spoken.")
    voice_file: str | None = Field(None, description=(
        "A recorded WAV file to play instead of espeak-ng (relative to the words file's folder)."))
    hold_s: float | None = Field(None, ge=0.0, description="Override of timing.hold_s for this expression.")
    on_score: float | None = Field(None, gt=0.0, le=1.0, description="Override of timing.on_score for this expression.")
    off_score: float | None = Field(None, ge=0.0, le=1.0, description=(
        "Override of timing.off_score for this expression."))


class GestureConfig(StrictModel):
    """A sign that lives in time, recognised from per-frame scores and the 5 landmarks."""

    kind: Literal["held", "nod", "shake"] = Field(..., description=(
        "held: an expression class held for min_s (a long blink = eyes_closed held); nod: head pitch "
        "oscillation; shake: head yaw oscillation."))
    expression: str | None = Field(None, description="kind held: the model class that must be held.")
    threshold: float = Field(0.5, gt=0.0, le=1.0, description="kind held: class score that counts as present.")
    min_s: float = Field(1.0, gt=0.0, description="kind held: seconds the class must be present without a break.")
    window_s: float = Field(1.5, gt=0.0, description="nod/shake: seconds of head motion looked at.")
    amplitude: float = Field(0.05, gt=0.0, description=(
        "nod/shake: smallest swing counted, in inter-eye distances of the head-pose signal (jitter is ~0.01)."))
    min_swings: int = Field(2, ge=1, description="nod/shake: swings (direction reversals) needed within the window.")

    @model_validator(mode="after")
    def _need_expression(self) -> GestureConfig:
        if self.kind == "held" and not self.expression:
            raise ValueError("kind held needs 'expression' (the model class that is held)")
        return self


class WordsConfig(StrictModel):
    """A child's words file."""

    child: str = Field("child", description="Name shown in logs and on the review page.")
    voice: VoiceConfig = Field(VoiceConfig(), description="espeak-ng voice settings.")
    timing: TimingConfig = Field(TimingConfig(), description="Hysteresis and hold times.")
    gestures: dict[str, GestureConfig] = Field({}, description="Named gestures, usable in 'words' like classes.")
    words: dict[str, WordEntry] = Field(..., min_length=1, description="Expression or gesture name -> word.")

    @field_validator("words", mode="before")
    @classmethod
    def _plain_words(cls, v: object) -> object:
        """``smile: yes`` is a plain word; YAML reads yes/no (and numbers) as other types: spoken as written
        when unambiguous (yes, no, the number)."""
        if isinstance(v, dict):
            plain = (str, bool, int, float)
            return {str(k): {"word": _as_word(w)} if isinstance(w, plain) else w for k, w in v.items()}
        return v

    def thresholds(self, name: str) -> tuple[float, float, float]:
        """(on, off, hold_s) of expression ``name`` with its overrides; a gesture's hold defaults to 0
        (it already lasts ``min_s`` or ``window_s``)."""
        w, t = self.words[name], self.timing
        on = w.on_score if w.on_score is not None else t.on_score
        off = w.off_score if w.off_score is not None else min(t.off_score, on)
        hold = w.hold_s if w.hold_s is not None else (0.0 if name in self.gestures else t.hold_s)
        return on, off, hold


def _as_word(w: str | bool | int | float) -> str:
    if isinstance(w, bool):
        return "yes" if w else "no"
    return str(w)


def load_words(path: str | Path) -> tuple[WordsConfig, Path]:
    """The words file and its folder (recorded voice files are relative to it); checks voice files."""
    p = Path(path)
    cfg = load_config(WordsConfig, p)
    for name, w in cfg.words.items():
        if w.voice_file:
            check_wav(p.parent / w.voice_file, f"{p}: words.{name}.voice_file")
    return cfg, p.parent


def check_wav(path: Path, where: str) -> float:
    """Duration (s) of a readable WAV file, or a FacesError naming ``where``."""
    if not path.is_file():
        raise FacesError(f"{where}: file {path} not found")
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError) as exc:
        raise FacesError(f"{where}: {path} is not a readable WAV file ({exc})") from None


def check_names(cfg: WordsConfig, classes: list[str], source: str) -> None:
    """Every word key is a model class or a gesture; every held gesture holds a model class."""
    for g, gc in cfg.gestures.items():
        if g in classes:
            raise FacesError(f"{source}: gestures.{g}: the name is already a class of the model; rename the gesture")
        if gc.kind == "held" and gc.expression not in classes:
            raise FacesError(f"{source}: gestures.{g}.expression: {gc.expression!r} is not a class of the model "
                             f"({', '.join(classes)})")
    for name in cfg.words:
        if name not in classes and name not in cfg.gestures:
            known = ", ".join(classes + list(cfg.gestures))
            raise FacesError(f"{source}: words.{name}: the model does not know the expression {name!r} "
                             f"(classes and gestures: {known})")


def save_words(path: str | Path, cfg: WordsConfig) -> None:
    """Write the words file atomically (comments in the old file are not kept)."""
    text = yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
    atomic_write_text(path, text)
