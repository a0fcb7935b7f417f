"""An equidistant fisheye sensor for Mitsuba (r = f * theta), written as a Python plugin so the
image and the label pass use exactly the camera model in :mod:`simreal.render.camera`."""

from __future__ import annotations

from typing import Any


def register_fisheye() -> None:
    """Register the ``simreal_fisheye`` sensor plugin for the active variant."""
    import drjit as dr
    import mitsuba as mi

    class FisheyeSensor(mi.Sensor):  # type: ignore[misc, name-defined]
        """Equidistant fisheye; ``fov`` (degrees) spans the film's width."""

        def __init__(self, props: Any) -> None:
            mi.Sensor.__init__(self, props)
            self.half_fov = dr.deg2rad(props.get("fov", 180.0)) / 2.0
            size = self.film().size()
            self.aspect = float(size[1]) / float(size[0])
            self.tw = self.world_transform()

        def sample_ray(self, time: Any, wavelength_sample: Any, position_sample: Any,
                       aperture_sample: Any, active: Any = True) -> Any:
            # film x grows to the right = camera -X (left-handed look-at frame)
            dx = 1.0 - 2.0 * position_sample[0]
            dy = (1.0 - 2.0 * position_sample[1]) * self.aspect
            r = dr.sqrt(dx * dx + dy * dy)
            theta = r * self.half_fov
            phi = dr.atan2(dy, dx)
            st = dr.sin(theta)
            d = mi.Vector3f(st * dr.cos(phi), st * dr.sin(phi), dr.cos(theta))
            ray = mi.Ray3f(self.tw @ mi.Point3f(0.0, 0.0, 0.0), dr.normalize(self.tw @ d), time, [])
            weight = dr.select(theta <= self.half_fov, 1.0, 0.0)
            return ray, mi.Color3f(weight)

        def sample_ray_differential(self, time: Any, ws: Any, ps: Any, aps: Any, active: Any = True) -> Any:
            ray, w = self.sample_ray(time, ws, ps, aps, active)
            return mi.RayDifferential3f(ray), w

        def bbox(self) -> Any:
            return mi.ScalarBoundingBox3f()

        def traverse(self, callback: Any) -> None:
            pass

        def to_string(self) -> str:
            return "SimrealFisheye[]"

    mi.register_sensor("simreal_fisheye", lambda props: FisheyeSensor(props))
