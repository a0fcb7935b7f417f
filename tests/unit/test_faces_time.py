"""Hysteresis and gestures over synthetic 30 fps streams: blips speak nothing, a held expression
speaks once, chatter between the thresholds does not restart the hold, re-arming and cooldown;
swing counting; nods and shakes from a rotating 3-D head; a long blink against short ones."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.faces.gestures import GestureTracker, count_swings
from simreal.faces.hysteresis import HoldDetector
from simreal.faces.words import GestureConfig, WordsConfig

from .test_faces_align import project

FPS = 30.0


def run(stream: list[dict[str, float]], det: HoldDetector) -> list[tuple[float, str]]:
    out = []
    for i, s in enumerate(stream):
        out += [(round(e.t, 4), e.name) for e in det.update(i / FPS, s)]
    return out


def frames(seconds: float, **scores: float) -> list[dict[str, float]]:
    return [dict(scores) for _ in range(int(round(seconds * FPS)))]


def test_blips_speak_nothing_a_held_expression_speaks_once() -> None:
    det = HoldDetector({"smile": (0.6, 0.4, 0.5)}, rearm_s=0.3, cooldown_s=1.0)
    blips = (frames(0.2, smile=0.95) + frames(0.8, smile=0.1)) * 5
    assert run(blips, det) == []
    det = HoldDetector({"smile": (0.6, 0.4, 0.5)}, rearm_s=0.3, cooldown_s=1.0)
    ev = run(frames(1.0, smile=0.1) + frames(4.0, smile=0.9) + frames(1.0, smile=0.1), det)
    assert len(ev) == 1 and ev[0][1] == "smile"
    assert ev[0][0] == pytest.approx(1.0 + 0.5, abs=1.01 / FPS)  # hold time after the onset


def test_chatter_between_thresholds_keeps_the_hold() -> None:
    det = HoldDetector({"smile": (0.6, 0.4, 0.5)}, rearm_s=0.3, cooldown_s=1.0)
    chatter = [{"smile": 0.65 if i % 2 else 0.45} for i in range(int(2 * FPS))]  # crosses 'on', never below 'off'
    ev = run(frames(0.5, smile=0.0) + chatter, det)
    assert len(ev) == 1 and ev[0][0] == pytest.approx(0.5 + 1 / FPS + 0.5, abs=1.01 / FPS)
    det = HoldDetector({"smile": (0.6, 0.4, 0.5)}, rearm_s=0.3, cooldown_s=1.0)
    dips = [{"smile": 0.9 if i % 6 else 0.3} for i in range(int(3 * FPS))]  # drops below 'off' every 0.2 s
    assert run(dips, det) == []


def test_rearm_and_cooldown() -> None:
    det = HoldDetector({"smile": (0.6, 0.4, 0.5)}, rearm_s=0.3, cooldown_s=0.0)
    quick = frames(1.0, smile=0.9) + frames(0.2, smile=0.1) + frames(1.0, smile=0.9)  # let go too briefly
    assert len(run(quick, det)) == 1
    det = HoldDetector({"smile": (0.6, 0.4, 0.5)}, rearm_s=0.3, cooldown_s=0.0)
    twice = frames(1.0, smile=0.9) + frames(0.5, smile=0.1) + frames(1.0, smile=0.9)
    assert [n for _, n in run(twice, det)] == ["smile", "smile"]
    det = HoldDetector({"smile": (0.6, 0.4, 0.3), "mouth_open": (0.6, 0.4, 0.3)}, rearm_s=0.3, cooldown_s=2.0)
    stream = frames(0.6, smile=0.9) + frames(0.4, smile=0.0) + frames(3.0, mouth_open=0.9)
    ev = run(stream, det)
    assert [n for _, n in ev] == ["smile", "mouth_open"]
    assert ev[1][0] == pytest.approx(ev[0][0] + 2.0, abs=1.01 / FPS)  # waited for the cooldown


def test_count_swings() -> None:
    assert count_swings([0, 0.01, -0.01, 0.012, 0], 0.05) == 0
    assert count_swings([0, 0.1, 0.2, 0.1, 0.0], 0.05) == 2
    assert count_swings([0, -0.1, 0.05, -0.1, 0.05, -0.1], 0.05) == 5
    assert count_swings(np.linspace(0, 1, 50), 0.05) == 1  # a slow drift is one swing


def _nod_stream(kind: str, seconds: float = 3.0, amp_deg: float = 15.0, noise_px: float = 0.5) -> list:
    rng = np.random.default_rng(0)
    out = []
    for i in range(int(seconds * FPS)):
        t = i / FPS
        a = amp_deg * np.sin(2 * np.pi * 1.5 * t) if kind != "still" else 0.0
        lm = project(pitch=a) if kind == "nod" else project(yaw=a)
        out.append((t, lm + rng.normal(0, noise_px, lm.shape)))
    return out


@pytest.mark.parametrize("kind", ["nod", "shake", "still"])
def test_nod_and_shake_from_landmarks(kind: str) -> None:
    g = GestureTracker({"nod": GestureConfig(kind="nod", min_swings=2), "shake": GestureConfig(kind="shake",
                                                                                             min_swings=2)})
    seen = {"nod": 0, "shake": 0}
    for t, lm in _nod_stream(kind):
        for k, v in g.update(t, {}, lm).items():
            seen[k] += v > 0
    if kind == "still":
        assert seen == {"nod": 0, "shake": 0}
    else:
        other = "shake" if kind == "nod" else "nod"
        assert seen[kind] > 10 and seen[other] == 0


def test_long_blink_against_short_blinks() -> None:
    g = GestureTracker({"long_blink": GestureConfig(kind="held", expression="eyes_closed", min_s=1.0)})
    det = HoldDetector({"long_blink": (0.5, 0.5, 0.0)}, rearm_s=0.3, cooldown_s=1.0)
    stream = (frames(0.3, eyes_closed=0.9) + frames(0.7, eyes_closed=0.05)) * 4 + frames(1.5, eyes_closed=0.95) \
        + frames(1.0, eyes_closed=0.05)
    ev = []
    lm = project()
    for i, s in enumerate(stream):
        ev += det.update(i / FPS, g.update(i / FPS, s, lm))
    assert len(ev) == 1 and ev[0].t == pytest.approx(4.0 + 1.0, abs=1.01 / FPS)
    assert g.update(99.0, None, None) == {"long_blink": 0.0}  # no face: the hold is broken


def test_words_thresholds_and_gesture_hold_default() -> None:
    w = WordsConfig.model_validate({"words": {"smile": "yes", "long_blink": {"word": "tired"}},
                                    "gestures": {"long_blink": {"kind": "held", "expression": "eyes_closed"}},
                                    "timing": {"on_score": 0.7, "off_score": 0.3, "hold_s": 0.4}})
    assert w.thresholds("smile") == (0.7, 0.3, 0.4)
    assert w.thresholds("long_blink") == (0.7, 0.3, 0.0)
