"""An equidistant fisheye sensor for Mitsuba (r = f * theta), written as a Python plugin so the
image and the label pass use exactly the camera model in :mod:`simreal.render.camera`."""

from __future__ import annotations

from typing import Any


def register_fisheye() -> None:
    """Register the ``simreal_fisheye`` sensor plugin for the active variant."""
    import drjit as dr
    import mitsuba as mi

    class FisheyeSensor(mi.Sensor):  # type: ignore[misc, name-defined]
        """Equidistant fisheye r = focal * theta. ``fov`` (degrees) spans the film's width unless
        ``focal`` (pixels per radian) is given; then ``fov`` only bounds the image circle. ``cx``, ``cy``:
        the optical centre in pixels (default: the film's centre)."""

        def __init__(self, props: Any) -> None:
            mi.Sensor.__init__(self, props)
            self.half_fov = dr.deg2rad(props.get("fov", 180.0)) / 2.0
            film = self.film()
            size = film.size()
            self.w, self.h = float(size[0]), float(size[1])
            # Mitsuba hands sample_ray positions relative to the film's crop window
            self.ox, self.oy = float(film.crop_offset()[0]), float(film.crop_offset()[1])
            self.cw, self.ch = float(film.crop_size()[0]), float(film.crop_size()[1])
            self.focal = props.get("focal", 0.0) or (self.w / 2.0) / self.half_fov
            self.cx = props.get("cx", self.w / 2.0)
            self.cy = props.get("cy", self.h / 2.0)
            self.tw = self.world_transform()

        def sample_ray(self, time: Any, wavelength_sample: Any, position_sample: Any,
                       aperture_sample: Any, active: Any = True) -> Any:
            # film x grows to the right = camera -X (left-handed look-at frame)
            dx = self.cx - (self.ox + position_sample[0] * self.cw)
            dy = self.cy - (self.oy + position_sample[1] * self.ch)
            r = dr.sqrt(dx * dx + dy * dy)
            theta = r / self.focal
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
