"""Mitsuba variants: labels are exact geometry in every variant (the JIT variant's label maps and
see-through rays equal the scalar reference's), backends of two variants share a process, and a variant
this machine cannot run is one clear ConfigError; Ray tasks of the GPU variant ask for GPUs."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.errors import ConfigError
from simreal.render.backends.mitsuba import MitsubaBackend, check_variant
from simreal.render.camera import Camera, look_at
from simreal.render.primitives import primitive
from simreal.render.scene import Instance, Material, SceneData
from simreal.runtime.executors import ray_gpus_check


def _llvm_or_skip() -> None:
    try:
        check_variant("llvm_ad_rgb")
    except ConfigError as exc:
        pytest.skip(str(exc))


def _scene(model: str = "pinhole", fov: float = 50.0) -> SceneData:
    """A sphere partly hidden behind a cube, a second sphere off to the side."""
    cube = primitive("cube").transformed(np.diag([0.5, 0.5, 0.5, 1.0]) @ _translate(0.4, 0.0, 1.6))
    sphere = primitive("sphere", radius=0.6, segments=64, rings=32)
    side = primitive("sphere", radius=0.3, segments=32, rings=16).transformed(_translate(-1.1, 0.4, 0.0))
    cam = Camera(look_at(np.array([0.0, 0.0, 4.0]), np.zeros(3), np.array([0.0, 1.0, 0.0])), 64, 48, model, fov)
    return SceneData(cam, [Instance(sphere, Material(), 1, 1), Instance(cube, Material(), 2, 2),
                           Instance(side, Material(), 1, 3)])


def _translate(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


@pytest.mark.parametrize("model,fov", [("pinhole", 50.0), ("fisheye", 120.0)])
def test_jit_labels_equal_the_scalar_reference(model: str, fov: float) -> None:
    _llvm_or_skip()
    scalar, llvm = MitsubaBackend("scalar_rgb"), MitsubaBackend("llvm_ad_rgb")
    scene = _scene(model, fov)
    ref = scalar.labels(scene)
    assert set(np.unique(ref)) == {0, 1, 2, 3}  # every instance is seen
    got = llvm.labels(scene)
    assert np.array_equal(got, ref)
    assert np.array_equal(llvm.labels(scene, only=[0]), scalar.labels(scene, only=[0]))  # amodal pass
    # rays through the cube's pixels that go on to reach the sphere behind it
    pix = np.argwhere(ref == 2)
    hit = scalar.see_through(scene, pix, {0})
    assert 0 < hit.sum() < len(pix)
    assert np.array_equal(llvm.see_through(scene, pix, {0}), hit)
    # the scalar backend still renders in its own variant after the other one ran in this process
    assert np.array_equal(scalar.labels(scene), ref)
    _, lab = llvm.render_with_labels(_scene(model, fov))
    assert np.array_equal(lab, ref)


def test_unavailable_variants_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not a render variant"):
        check_variant("scalar_spectral")
    import drjit as dr

    if not dr.has_backend(dr.JitBackend.CUDA):
        with pytest.raises(ConfigError, match="cuda_ad_rgb needs a CUDA GPU"):
            check_variant("cuda_ad_rgb")


def test_ray_gpu_requests_need_gpus_in_the_cluster() -> None:
    ray_gpus_check({"CPU": 8.0}, 0.0)
    ray_gpus_check({"CPU": 8.0, "GPU": 2.0}, 0.25)
    with pytest.raises(ConfigError, match="the Ray cluster has 0 GPU"):
        ray_gpus_check({"CPU": 8.0}, 1.0)
