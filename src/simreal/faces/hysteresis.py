"""When does a stream of per-frame scores count as an expression? A Schmitt trigger per expression
(on at ``on``, off at ``off``, unchanged in between), a hold time before the word, a re-arm time
below ``off`` before the same expression can speak again, and a cooldown after any word."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Event:
    """An expression that was held long enough: its word is spoken at time ``t``."""

    t: float
    name: str
    score: float
    held_s: float


@dataclass
class _State:
    on_since: float | None = None
    below_since: float | None = None
    armed: bool = True


class HoldDetector:
    """``update(t, scores)`` -> the events decided at time ``t`` (at most one per call)."""

    def __init__(self, thresholds: dict[str, tuple[float, float, float]], rearm_s: float = 0.3,
                 cooldown_s: float = 1.5) -> None:
        for name, (on, off, hold) in thresholds.items():
            if not 0.0 <= off <= on or hold < 0.0:
                raise ValueError(f"{name}: expected 0 <= off <= on and hold >= 0, got {on}, {off}, {hold}")
        self.thresholds = thresholds
        self.rearm_s, self.cooldown_s = rearm_s, cooldown_s
        self.states = {n: _State() for n in thresholds}
        self.quiet_until = float("-inf")

    def update(self, t: float, scores: dict[str, float]) -> list[Event]:
        ready: list[Event] = []
        for name, (on, off, hold) in self.thresholds.items():
            s, st = float(scores.get(name, 0.0)), self.states[name]
            if s >= on:
                if st.on_since is None:
                    st.on_since = t
                st.below_since = None
            elif s <= off:
                st.on_since = None
                if st.below_since is None:
                    st.below_since = t
                if not st.armed and t - st.below_since >= self.rearm_s:
                    st.armed = True
            else:
                st.below_since = None  # between off and on: the state is kept
            if st.armed and st.on_since is not None and t - st.on_since >= hold and t >= self.quiet_until:
                ready.append(Event(t, name, s, t - st.on_since))
        if not ready:
            return []
        best = max(ready, key=lambda e: e.score)
        for st in self.states.values():  # every expression held now is consumed by this word
            if st.on_since is not None:
                st.armed = False
        self.quiet_until = t + self.cooldown_s
        return [best]
