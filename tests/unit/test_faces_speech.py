"""Speech: espeak-ng WAVs are non-silent and of a plausible duration (numpy RMS, duration checked
against sox), the files-mode speaker writes one WAV per spoken word and a timeline row, recorded
voice files are used as given, and missing tools or files are one clear error."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from simreal.faces.errors import FacesError
from simreal.faces.speech import Speaker, synthesize, wav_stats
from simreal.faces.words import WordsConfig, check_names, load_words

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@needs_espeak
def test_espeak_wav_is_speech_of_the_expected_length(tmp_path: Path) -> None:
    short = wav_stats(synthesize("yes", tmp_path / "yes.wav"))
    long = wav_stats(synthesize("I would like some water please", tmp_path / "water.wav"))
    assert 0.2 < short["duration_s"] < 1.5 and 1.0 < long["duration_s"] < 4.0
    assert long["duration_s"] > short["duration_s"] + 0.5
    assert short["rms"] > 0.02 and long["rms"] > 0.02 and long["peak"] > 0.2
    slow = wav_stats(synthesize("I would like some water please", tmp_path / "slow.wav", speed=90))
    assert slow["duration_s"] > 1.3 * long["duration_s"]
    if shutil.which("sox"):
        d = float(subprocess.run(["sox", "--i", "-D", str(tmp_path / "water.wav")], capture_output=True,
                                 text=True, check=True).stdout)
        assert d == pytest.approx(long["duration_s"], abs=1e-3)


@needs_espeak
def test_files_mode_speaker_writes_wavs_and_timeline(tmp_path: Path) -> None:
    words = WordsConfig.model_validate({"words": {"smile": "yes", "mouth_open": "water"}})
    sp = Speaker(words, tmp_path, tmp_path / "session", audio="files")
    sp.prepare()
    sp.speak("smile", 1.25, "now", 0.9, 0.5, 12.0)
    sp.speak("mouth_open", 3.5, "later", 0.8, 0.6, 10.0)
    sp.close()
    spoken = sorted((tmp_path / "session" / "spoken").glob("*.wav"))
    assert [p.name for p in spoken] == ["0001_00001.25s_smile.wav", "0002_00003.50s_mouth_open.wav"]
    assert spoken[0].read_bytes() == (tmp_path / "session" / "voices" / "smile.wav").read_bytes()
    assert wav_stats(spoken[1])["rms"] > 0.02
    rows = list(csv.DictReader(open(tmp_path / "session" / "timeline.csv")))
    assert [(r["time_s"], r["expression"], r["word"]) for r in rows] == [("1.25", "smile", "yes"),
                                                                        ("3.5", "mouth_open", "water")]


def test_recorded_voice_file_and_missing_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wave

    import numpy as np

    rec = tmp_path / "rec.wav"
    with wave.open(str(rec), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.sin(np.arange(8000) * 0.2) * 8000).astype("<i2").tobytes())
    (tmp_path / "child.yaml").write_text("words:\n  smile: {word: hello, voice_file: rec.wav}\n  glance: look\n")
    cfg, base = load_words(tmp_path / "child.yaml")
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on PATH
    with pytest.raises(FacesError, match="espeak-ng is not installed"):
        Speaker(cfg, base, tmp_path / "s", audio="files")
    assert not (tmp_path / "s").exists()  # nothing written
    cfg2 = WordsConfig.model_validate({"words": {"smile": {"word": "hello", "voice_file": "rec.wav"}}})
    sp = Speaker(cfg2, tmp_path, tmp_path / "s2", audio="files")
    assert sp.prepare() == {"smile": rec}
    assert wav_stats(rec)["duration_s"] == pytest.approx(0.5)
    sp.close()
    (tmp_path / "bad.yaml").write_text("words:\n  smile: {word: hi, voice_file: nothere.wav}\n")
    with pytest.raises(FacesError, match=r"bad.yaml: words.smile.voice_file: file .*nothere.wav not found"):
        load_words(tmp_path / "bad.yaml")


@needs_espeak
def test_unknown_voice_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FacesError, match="voice.voice: espeak-ng could not speak with voice 'xx-nope'"):
        synthesize("hi", tmp_path / "x.wav", voice="xx-nope")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_words_must_name_known_expressions() -> None:
    w = WordsConfig.model_validate({"words": {"happy": "yes"}})
    with pytest.raises(FacesError, match=r"child.yaml: words.happy: the model does not know the expression 'happy' "
                                         r"\(classes and gestures: neutral, smile\)"):
        check_names(w, ["neutral", "smile"], "child.yaml")
    w = WordsConfig.model_validate({"words": {"blink": "tired"},
                                    "gestures": {"blink": {"kind": "held", "expression": "eyes_shut"}}})
    with pytest.raises(FacesError, match="gestures.blink.expression: 'eyes_shut' is not a class"):
        check_names(w, ["neutral", "smile"], "child.yaml")
