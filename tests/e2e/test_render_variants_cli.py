"""``simreal render --variant llvm_ad_rgb``: the same bytes with 1 or 2 workers (the per-variant determinism
contract), the same annotations as the scalar reference (labels are geometry) though other image bytes;
Ray GPU tasks on a cluster without GPUs are refused instead of waiting forever."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simreal.errors import ConfigError
from simreal.render.backends.mitsuba import check_variant

from .render_helpers import folder_digest, simreal, write_config

pytestmark = pytest.mark.slow


def _annotations(root: Path) -> list[dict]:
    doc = json.loads((root / "annotations.json").read_text())
    return [{**{k: a[k] for k in ("image_id", "category_id", "bbox", "area", "segmentation")},
             **{k: a["simreal"][k] for k in ("instance_id", "amodal_bbox", "visibility", "truncated", "ignore")}}
            for a in doc["annotations"]]


def test_llvm_variant_bytes_do_not_depend_on_workers(tmp_path: Path) -> None:
    try:
        check_variant("llvm_ad_rgb")
    except ConfigError as exc:
        pytest.skip(str(exc))
    cfg = write_config(tmp_path, count=4)
    runs = {}
    for name, variant, workers in (("scalar", "scalar_rgb", "1"), ("llvm1", "llvm_ad_rgb", "1"),
                                   ("llvm2", "llvm_ad_rgb", "2")):
        simreal("render", "--config", str(cfg), "--out", str(tmp_path / name), "--workers", workers, "--variant",
                variant, "--quiet")
        runs[name] = tmp_path / name
    assert folder_digest(runs["llvm1"]) == folder_digest(runs["llvm2"])
    assert _annotations(runs["llvm1"]) == _annotations(runs["scalar"])
    a, b = folder_digest(runs["llvm1"]), folder_digest(runs["scalar"])
    assert {k: v for k, v in a.items() if k.startswith("masks/")} == {k: v for k, v in b.items()
                                                                     if k.startswith("masks/")}
    assert any(a[k] != b[k] for k in a if k.startswith("images/"))  # another renderer: other image bytes
    assert "variant=llvm_ad_rgb" in (runs["llvm2"] / "render.log").read_text()


def test_ray_refuses_gpu_tasks_without_gpus() -> None:
    pytest.importorskip("ray")
    from simreal.runtime.executors import run_ray

    with pytest.raises(ConfigError, match="the Ray cluster has 0 GPU"):
        list(run_ray(abs, [1, 2], workers=1, num_gpus=0.5))
