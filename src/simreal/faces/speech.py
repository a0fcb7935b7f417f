"""Speaking the words: espeak-ng (Debian package) or a recorded WAV per word, played on the audio
device when there is one; with none (or ``--audio files``) every spoken word is written as a WAV
file. Every word is logged in ``timeline.csv`` with its time. Voices are synthesised once, when
the session starts, so speaking a word costs only starting the player."""

from __future__ import annotations

import csv
import glob
import os
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np

from simreal.faces.errors import FacesError
from simreal.faces.words import WordsConfig, check_wav

PLAYERS = ("paplay", "aplay")
TIMELINE_FIELDS = ("n", "time_s", "wall_clock", "expression", "word", "score", "held_s", "latency_ms", "wav")


def espeak_path() -> str:
    """The espeak-ng executable, or a one-line error saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FacesError("espeak-ng is not installed (apt-get install espeak-ng), and not every word has a "
                         "recorded voice_file in the words file")
    return exe


def synthesize(text: str, out: Path, voice: str = "en", speed: int = 140, pitch: int = 50,
               amplitude: int = 100) -> Path:
    """Speak ``text`` with espeak-ng into the WAV file ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.wav")
    cmd = [espeak_path(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude), "-w", str(tmp),
           "--", text]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if res.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        msg = (res.stderr or res.stdout).strip().splitlines()
        why = msg[-1] if msg else "failed"
        raise FacesError(f"voice.voice: espeak-ng could not speak with voice {voice!r} ({why})")
    os.replace(tmp, out)
    return out


def audio_player() -> list[str] | None:
    """A command that plays a WAV file on this machine's audio output, or None when there is none."""
    pulse = os.environ.get("PULSE_SERVER") or Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"), "pulse",
                                                                "native").exists()
    if pulse and shutil.which("paplay"):
        return ["paplay"]
    if glob.glob("/dev/snd/pcmC*D*p") and shutil.which("aplay"):
        return ["aplay", "-q"]
    return None


class Speaker:
    """Prepares one WAV per word, then speaks (plays or writes) words and logs them."""

    def __init__(self, words: WordsConfig, words_dir: Path, out: Path, audio: str = "auto") -> None:
        if audio not in ("auto", "speaker", "files"):
            raise FacesError(f"--audio: {audio!r} is not one of auto, speaker, files")
        self.words, self.words_dir, self.out = words, words_dir, out
        self.player = None if audio == "files" else audio_player()
        if audio == "speaker" and self.player is None:
            raise FacesError("--audio speaker: no audio output device found (use --audio files to write WAV files)")
        self.mode = "speaker" if self.player else "files"
        self.voices: dict[str, Path] = {}
        self.n = 0
        self._procs: list[subprocess.Popen[bytes]] = []
        self._timeline: Any = None
        for name, w in words.words.items():  # fail before anything is written
            if w.voice_file:
                check_wav(words_dir / w.voice_file, f"words.{name}.voice_file")
            else:
                espeak_path()

    def prepare(self) -> dict[str, Path]:
        """One WAV per expression (its recorded voice file, or espeak-ng's rendering of its word);
        then opens ``timeline.csv``."""
        v = self.words.voice
        self.out.mkdir(parents=True, exist_ok=True)
        for name, w in self.words.words.items():
            if w.voice_file:
                p = self.words_dir / w.voice_file
                check_wav(p, f"words.{name}.voice_file")
                self.voices[name] = p
            else:
                self.voices[name] = synthesize(w.word, self.out / "voices" / f"{_safe(name)}.wav", v.voice,
                                               v.speed, v.pitch, v.amplitude)
        self._timeline = open(self.out / "timeline.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.DictWriter(self._timeline, fieldnames=TIMELINE_FIELDS)
        self._writer.writeheader()
        return self.voices

    def speak(self, name: str, t: float, wall_clock: str, score: float = 1.0, held_s: float = 0.0,
              latency_ms: float | None = None) -> dict[str, Any]:
        """Speak expression ``name``'s word at session time ``t``; returns its timeline row."""
        self.n += 1
        wav = self.voices[name]
        if self.player:
            self._procs = [p for p in self._procs if p.poll() is None]
            self._procs.append(subprocess.Popen([*self.player, str(wav)], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))
            where = str(wav)
        else:
            dest = self.out / "spoken" / f"{self.n:04d}_{t:08.2f}s_{_safe(name)}.wav"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(wav, dest)
            where = str(dest.relative_to(self.out))
        row = {"n": self.n, "time_s": round(t, 3), "wall_clock": wall_clock, "expression": name,
               "word": self.words.words[name].word, "score": round(score, 4), "held_s": round(held_s, 3),
               "latency_ms": None if latency_ms is None else round(latency_ms, 1), "wav": where}
        self._writer.writerow(row)
        self._timeline.flush()
        return row

    def close(self) -> None:
        for p in self._procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if self._timeline is not None:
            self._timeline.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "word"


def wav_stats(path: str | Path) -> dict[str, float]:
    """Duration (s), RMS and peak (of full scale) of a 16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as w:
        rate, n, ch, width = w.getframerate(), w.getnframes(), w.getnchannels(), w.getsampwidth()
        data = w.readframes(n)
    if width != 2:
        raise FacesError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    a = np.frombuffer(data, dtype="<i2").astype(np.float64).reshape(-1, ch) / 32768.0
    return {"duration_s": n / float(rate), "rms": float(np.sqrt((a**2).mean())) if a.size else 0.0,
            "peak": float(np.abs(a).max()) if a.size else 0.0, "rate": float(rate)}
