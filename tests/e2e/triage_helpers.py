"""Media and models for the triage tests, made here: drawn scenes with a red canister-like object in
known time spans, encoded with PyAV; a small classifier trained for real on the same renderer; run
folders in the exact format ``simreal train`` writes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

W, H = 128, 72  # video frame size
OBJ = 22  # object side in pixels


def scene(seed: int, t: float, obj: tuple[int, int] | None) -> np.ndarray:
    """A slowly panning textured background (``seed`` picks the scene), with the object's top-left at
    ``obj`` (or no object)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.15, 0.55, 3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    shift = 6.0 * t
    tex = 0.12 * np.sin((xx + shift) / (5 + seed % 4)) * np.cos(yy / (7 + seed % 3))
    img = np.clip(base[None, None, :] * (0.8 + 0.3 * xx[..., None] / W) + tex[..., None], 0, 1)
    img[..., 0] *= 0.6  # backgrounds are never strongly red
    if obj is not None:
        x, y = obj
        cy, cx = y + OBJ / 2, x + OBJ / 2
        d = ((yy - cy) / (OBJ / 2)) ** 2 + ((xx - cx) / (OBJ / 2.6)) ** 2
        body = d <= 1.0
        img[body] = (0.85, 0.12, 0.1)
        img[body & (np.abs(yy - cy) < 2)] = (0.95, 0.95, 0.9)  # a white band
    return (img * 255).astype(np.uint8)


def object_at(t: float, seed: int) -> tuple[int, int]:
    """Where the object is at time ``t`` (moves slowly so frames stay distinct)."""
    x = int(8 + (seed * 13 + 9 * t) % (W - OBJ - 16))
    y = int(6 + (seed * 7 + 3 * t) % (H - OBJ - 10))
    return x, y


def make_video(path: Path, duration: float, spans: list[tuple[float, float]], seed: int, fps: int = 10,
               codec: str = "libx264") -> Path:
    """Encode a video whose object is visible exactly during ``spans`` (seconds)."""
    from simreal.triage.encode import encode_video

    path.parent.mkdir(parents=True, exist_ok=True)

    def frames():  # noqa: ANN202
        for n in range(int(round(duration * fps))):
            t = n / fps
            inside = any(a <= t < b for a, b in spans)
            yield scene(seed, t, object_at(t, seed) if inside else None)

    return encode_video(path, frames(), fps, codec, gop=fps * 2)


def training_images(root: Path, n: int, seed: int) -> Path:
    """A class-per-folder dataset (``background/``, ``canister/``) drawn by the same renderer."""
    rng = np.random.default_rng(seed)
    for cls in ("background", "canister"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            s, t = int(rng.integers(0, 50)), float(rng.uniform(0, 30))
            img = scene(s, t, object_at(t, s) if cls == "canister" else None)
            Image.fromarray(img).save(root / cls / f"{i:03d}.png")
    return root


def train_classifier(tmp: Path, steps: int = 60) -> Path:
    """A small CNN classifier trained for real (``simreal train``, a few seconds)."""
    from simreal.adapt.api import train

    data = training_images(tmp / "train_data", 24, 0)
    cfg = tmp / "clf.yaml"
    cfg.write_text(f"""task: classify
seed: 0
data:
  image_size: [32, 32]
  domains:
    - {{path: {data}, name: drawn, role: source}}
model: {{arch: smallcnn, width: 8}}
optim: {{steps: {steps}, batch_per_domain: 16, lr: 0.003}}
selection: {{policy: last, eval_every: {steps}}}
checkpoint_every: {steps}
""")
    run = tmp / "clf_run"
    train(cfg, run, progress=False)
    return run


def saved_run(folder: Path, task: str, arch: str, image_size: tuple[int, int], classes: list[str],
              channels: int = 3, seed: int = 0, extra: str = "", task_state: dict[str, Any] | None = None) -> Path:
    """A run folder in the format ``simreal train`` writes (config.yaml, checkpoints/final.*), with
    untrained weights: for tests of scoring mechanics, not of accuracy."""
    import torch
    import yaml

    from simreal import load_run
    from simreal.adapt.api import RUN_KIND, task_options
    from simreal.adapt.config import TrainConfig
    from simreal.config import validate
    from simreal.runtime.runstore import RunStore
    from simreal.tasks.registry import get_task

    raw = {"task": task, "seed": seed,
           "data": {"image_size": list(image_size), "channels": channels, "domains": [{"path": str(folder)}]},
           "model": {"arch": arch, "width": 8}}
    raw.update(yaml.safe_load(extra) or {})
    cfg = validate(TrainConfig, raw, "test")
    store, _ = RunStore.prepare(folder, RUN_KIND, cfg)
    torch.manual_seed(seed)
    t = get_task(task, len(classes), classes, **task_options(cfg), **(task_state or {}))
    model = t.build_model(arch, channels, image_size, width=8)
    meta = {"task": task, "arch": arch, "classes": classes, "image_size": list(image_size), "channels": channels,
            "task_state": getattr(t, "state", dict)()}
    store.save_model("final", model, meta)
    load_run(folder)  # the run loads like a trained one
    return folder


def jpeg_bytes(arr: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
