"""``simreal faces run``: per frame detect -> align -> classify -> gestures -> hold detector ->
speak; logs every frame (``frames.csv``) and every word (``timeline.csv``) in the output folder
and reports the latency from a frame's arrival to the decision taken on it."""

from __future__ import annotations

import csv
import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simreal.faces.align import align_face
from simreal.faces.classify import ChipClassifier
from simreal.faces.detect import DetectorConfig, FaceDetector
from simreal.faces.gestures import GestureTracker
from simreal.faces.hysteresis import HoldDetector
from simreal.faces.media import Frame
from simreal.faces.speech import Speaker
from simreal.faces.words import WordsConfig, check_names
from simreal.runtime.progress import close_logger, folder_logger, make_progress


@dataclass
class LiveSummary:
    """What a live session did, with its speed."""

    out: Path
    frames: int
    frames_with_face: int
    words: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    audio: str = "files"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else float("nan")


class Session:
    """The per-frame pipeline of one child's live session (usable without the CLI)."""

    def __init__(self, classifier: ChipClassifier, words: WordsConfig, speaker: Speaker | None,
                 detector_cfg: DetectorConfig | None = None, words_source: str = "words file") -> None:
        check_names(words, classifier.classes, words_source)
        self.clf, self.words, self.speaker = classifier, words, speaker
        self.detector = FaceDetector(detector_cfg or DetectorConfig())
        self.gestures = GestureTracker(words.gestures)
        self.hold = HoldDetector({n: words.thresholds(n) for n in words.words}, words.timing.rearm_s,
                                 words.timing.cooldown_s)

    def step(self, frame: Frame, t_in: float) -> dict[str, Any]:
        """Process one frame that arrived at ``t_in`` (perf_counter); returns its log row."""
        faces = self.detector.detect(frame.rgb)
        scores: dict[str, float] | None = None
        lm = None
        if faces:
            lm = faces[0].landmarks  # the largest face
            chip = align_face(frame.rgb, lm, self.clf.chip_size, self.clf.padding).chip
            p = self.clf.probs([chip])[0]
            scores = {c: float(v) for c, v in zip(self.clf.classes, p, strict=True)}
        g = self.gestures.update(frame.t, scores, lm)
        events = self.hold.update(frame.t, {**(scores or {}), **g})
        latency = (time.perf_counter() - t_in) * 1000.0
        row: dict[str, Any] = {"time_s": round(frame.t, 3), "face": int(bool(faces)), "latency_ms": round(latency, 2)}
        if scores:
            top = max(scores, key=scores.__getitem__)
            row.update(top=top, top_score=round(scores[top], 4))
        active = [k for k, v in g.items() if v > 0]
        row["gestures"] = " ".join(active)
        row["word"] = ""
        for ev in events:
            row["word"] = self.words.words[ev.name].word
            if self.speaker is not None:
                row["spoken"] = self.speaker.speak(ev.name, ev.t, _dt.datetime.now().isoformat(timespec="milliseconds"),
                                                   ev.score, ev.held_s, latency)
        return row


def run_session(session: Session, frames: Any, out: Path, *, realtime: bool = False, quiet: bool = False,
                total: int | None = None) -> LiveSummary:
    """Feed ``frames`` through ``session``; ``realtime`` paces a video at its own clock."""
    out.mkdir(parents=True, exist_ok=True)
    log = folder_logger(out, "faces.run", "run.log")
    summ = LiveSummary(out, 0, 0, audio=session.speaker.mode if session.speaker else "none")
    fields = ["time_s", "face", "top", "top_score", "gestures", "word", "latency_ms"]
    t_start = time.perf_counter()
    with open(out / "frames.csv", "w", newline="", encoding="utf-8") as fh, \
            make_progress("frame", disable=quiet) as prog:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        bar = prog.add_task("live", total=total)
        it = iter(frames)
        t_media0: float | None = None
        for fr in it:
            if realtime:
                t_media0 = fr.t if t_media0 is None else t_media0
                delay = (fr.t - t_media0) - (time.perf_counter() - t_start)
                if delay > 0:
                    time.sleep(delay)
            t_in = time.perf_counter()  # the frame is in (decoded); latency runs to the decision on it
            row = session.step(fr, t_in)
            writer.writerow(row)
            summ.frames += 1
            summ.frames_with_face += row["face"]
            summ.latency_ms.append(row["latency_ms"])
            if row.get("spoken"):
                summ.words.append(row["spoken"])
                log.info("%.2fs: %s -> %r", fr.t, row["spoken"]["expression"], row["spoken"]["word"])
            prog.advance(bar)
    summ.seconds = time.perf_counter() - t_start
    log.info("%d frames (%d with a face) in %.1fs: %.1f frames/s; latency median %.1f ms, p95 %.1f ms; %d words",
             summ.frames, summ.frames_with_face, summ.seconds, summ.fps, summ.latency(50), summ.latency(95),
             len(summ.words))
    close_logger(log)
    return summ
