"""Collision-free placement of people on a floor plan: each person's footprint (the convex hull of its
body, clothes, accessories and chair seen from above) is moved by a random yaw and position until it
stays inside the walkable floor, off the furniture and clear of everyone already placed.

Footprints are shapely polygons in the floor-plan frame (metres). Seated people are placed first
(their chairs are larger), most of them at a desk edge facing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simreal.errors import ConfigError


class PlacementError(ConfigError):
    """More people were asked for than fit without collisions."""

    def __init__(self, message: str, placed: int, requested: int) -> None:
        super().__init__(message)
        self.placed = placed
        self.requested = requested


@dataclass
class Placed:
    """Where one person went: floor position (x, y), yaw (degrees), footprint polygon (metres)."""

    x: float
    y: float
    yaw: float
    footprint: Any


def footprint_template(points_xy: np.ndarray) -> Any:
    """The convex hull of body-frame points (N, 2) seen from above, as a shapely polygon."""
    import shapely

    return shapely.MultiPoint(np.asarray(points_xy, np.float64)).convex_hull


def moved(template: Any, x: float, y: float, yaw: float) -> Any:
    """``template`` rotated by ``yaw`` degrees about the body origin, then moved to (x, y)."""
    from shapely import affinity

    return affinity.translate(affinity.rotate(template, yaw, origin=(0, 0)), x, y)


def _desk_spot(rng: np.random.Generator, furniture: list[Any], template: Any, clearance: float
               ) -> tuple[float, float, float] | None:
    """A spot facing a random furniture edge, just clear of it (the body front is -y in its frame)."""
    f = furniture[int(rng.integers(len(furniture)))]
    poly = np.asarray(f.polygon, np.float64)
    k = int(rng.integers(len(poly)))
    a, b = poly[k], poly[(k + 1) % len(poly)]
    e = b - a
    length = float(np.hypot(*e))
    if length < 0.3:
        return None
    # outward normal of the edge (polygon orientation-independent)
    n = np.array([e[1], -e[0]]) / length
    centroid = poly.mean(axis=0)
    mid = (a + b) / 2
    if np.dot(mid - centroid, n) < 0:
        n = -n
    s = float(rng.uniform(0.2, 0.8))
    yaw = float(np.degrees(np.arctan2(n[0], -n[1])))  # rotate body -y (front) onto -n (facing the edge)
    front = -template.bounds[1]  # how far the body reaches in front of its origin
    d = front + clearance + float(rng.uniform(0.0, 0.1))
    p = a + s * e + d * n
    return float(p[0]), float(p[1]), yaw


def place_people(rng: np.random.Generator, templates: list[Any], sitting: list[bool], area: Any,
                 floor: Any | None, furniture: list[Any], clearance: float, attempts: int, restarts: int,
                 desk_probability: float = 0.7, strict: bool = True) -> list[Placed | None]:
    """Positions and yaws for people with footprint ``templates`` (body frame). ``area``: where a
    person's origin may be (the floor the camera sees); ``floor``: the walkable polygon that must hold
    the whole footprint (None: no walls). When they do not all fit: ``strict`` raises PlacementError with
    the best count reached, else the best attempt is returned with None for the people left out."""
    import shapely

    obstacles = [shapely.Polygon(f.polygon).buffer(clearance) for f in furniture]
    order = sorted(range(len(templates)), key=lambda i: (not sitting[i], i))
    minx, miny, maxx, maxy = area.bounds
    best: dict[int, Placed] = {}
    for _ in range(max(1, restarts)):
        placed: dict[int, Placed] = {}
        taken: list[Any] = []
        for i in order:
            tpl = templates[i]
            ok = None
            for _ in range(attempts):
                spot = None
                if sitting[i] and furniture and rng.uniform() < desk_probability:
                    spot = _desk_spot(rng, furniture, tpl, clearance)
                if spot is None:
                    spot = (float(rng.uniform(minx, maxx)), float(rng.uniform(miny, maxy)),
                            float(rng.uniform(0, 360)))
                x, y, yaw = spot
                if not shapely.contains_xy(area, x, y):
                    continue
                fp = moved(tpl, x, y, yaw)
                if (floor is not None and not floor.contains(fp)) or any(fp.intersects(o) for o in obstacles):
                    continue
                grown = fp.buffer(clearance)
                if any(grown.intersects(t) for t in taken):
                    continue
                ok = Placed(x, y, yaw, fp)
                break
            if ok is None:
                break
            placed[i] = ok
            taken.append(ok.footprint)
        if len(placed) > len(best) or not best:
            best = placed
        if len(placed) == len(templates):
            break
    if len(best) < len(templates) and strict:
        raise PlacementError(f"only {len(best)} of {len(templates)} people fit without collisions", len(best),
                             len(templates))
    return [best.get(i) for i in range(len(templates))]
