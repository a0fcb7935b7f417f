"""Signs that live in time, from per-frame class scores and the 5 landmarks over a short window:
a class held for a while (a long blink = ``eyes_closed`` held >= 1 s, a sideways glance held),
and head nods / shakes (oscillation of the pitch / yaw signal of :func:`simreal.faces.align.head_pose`).
Each gesture gives a score of 0 or 1 per frame, used like a class score by the hold detector."""

from __future__ import annotations

from collections import deque

import numpy as np

from simreal.faces.align import head_pose
from simreal.faces.words import GestureConfig


def count_swings(values: list[float] | np.ndarray, amplitude: float) -> int:
    """Direction reversals of at least ``amplitude`` in a signal (zig-zag turning points): a nod
    down and back up is 2 swings; jitter smaller than ``amplitude`` counts nothing."""
    v = [float(x) for x in values]
    if not v:
        return 0
    lo = hi = v[0]
    direction, ext, swings = 0, v[0], 0
    for x in v[1:]:
        if direction == 0:
            lo, hi = min(lo, x), max(hi, x)
            if x - lo >= amplitude:
                direction, ext, swings = 1, x, 1
            elif hi - x >= amplitude:
                direction, ext, swings = -1, x, 1
        elif direction > 0:
            if x > ext:
                ext = x
            elif ext - x >= amplitude:
                direction, ext, swings = -1, x, swings + 1
        else:
            if x < ext:
                ext = x
            elif x - ext >= amplitude:
                direction, ext, swings = 1, x, swings + 1
    return swings


class GestureTracker:
    """``update(t, scores, landmarks)`` -> {gesture name: 0.0 or 1.0} for the configured gestures."""

    def __init__(self, gestures: dict[str, GestureConfig]) -> None:
        self.gestures = gestures
        self.present_since: dict[str, float | None] = {g: None for g in gestures}
        horizon = max([g.window_s for g in gestures.values() if g.kind != "held"], default=0.0)
        self.horizon = horizon
        self.pose: deque[tuple[float, float, float]] = deque()  # (t, yaw, pitch)

    def update(self, t: float, scores: dict[str, float] | None, landmarks: np.ndarray | None) -> dict[str, float]:
        if landmarks is None:  # no face: motion and holds are interrupted
            self.pose.clear()
        elif self.horizon > 0:
            hp = head_pose(landmarks)
            self.pose.append((t, hp["yaw"], hp["pitch"]))
            while self.pose and t - self.pose[0][0] > self.horizon:
                self.pose.popleft()
        out: dict[str, float] = {}
        for name, g in self.gestures.items():
            if g.kind == "held":
                present = scores is not None and float(scores.get(str(g.expression), 0.0)) >= g.threshold
                if not present:
                    self.present_since[name] = None
                elif self.present_since[name] is None:
                    self.present_since[name] = t
                since = self.present_since[name]
                out[name] = 1.0 if since is not None and t - since >= g.min_s else 0.0
            else:
                out[name] = 1.0 if self._oscillates(t, g) else 0.0
        return out

    def _oscillates(self, t: float, g: GestureConfig) -> bool:
        win = [(y, p) for (tt, y, p) in self.pose if t - tt <= g.window_s]
        if len(win) < 3:
            return False
        yaw, pitch = np.array([w[0] for w in win]), np.array([w[1] for w in win])
        main, other = (pitch, yaw) if g.kind == "nod" else (yaw, pitch)
        if np.ptp(main) <= np.ptp(other):  # a nod moves pitch more than yaw, a shake the reverse
            return False
        return count_swings(main, g.amplitude) >= g.min_swings
