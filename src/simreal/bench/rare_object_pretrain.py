"""The stand-in for ImageNet weights in the rare-object benchmark: the slim ResNet-18 pretrained once on
synthetic digit crops (fonts only: no real image, no real label), cached outside the clone.

The paper's three networks start from an ImageNet-trained ResNet-50. Nothing may be downloaded here and
from scratch none of the three learns the task within the benchmark's CPU budget (seed 0: even the
oracle stayed at chance), so every row starts from the same backbone, trained on 48 px crops of one
font digit (crisp or coarsely captured, on flat colours or photo crops disjoint from the real domain's)
or of background only (11 classes). The file is ``$SIMREAL_CACHE/bench/rare_object/backbone-<key>.safetensors``
(default ``~/.cache/simreal``), keyed by every setting below; a second run reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from simreal.runtime.seeding import sample_rng

VERSION = 1


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining settings (part of the cache key)."""

    crops: int = 8000
    size: int = 48
    steps: int = 800
    batch: int = 64
    lr: float = 2e-3
    base_width: int = 16
    seed: int = 12345


def cache_dir() -> Path:
    return Path(os.environ.get("SIMREAL_CACHE", "~/.cache/simreal")).expanduser() / "bench" / "rare_object"


def digit_crops(cfg: PretrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 crops and labels: 0-9 a font digit, 10 background only."""
    from simreal.bench.digits_data import digit_fonts
    from simreal.bench.rare_object_data import RENDER_PHOTOS, _crop, _font_glyph, _ink_colour, load_photos

    fonts, photos = digit_fonts(), load_photos(RENDER_PHOTOS)
    s = cfg.size
    xs = np.zeros((cfg.crops, s, s, 3), np.uint8)
    ys = np.zeros(cfg.crops, np.int64)
    for i in range(cfg.crops):
        rng = sample_rng(cfg.seed, i)
        if rng.random() < 0.5:
            bg = _crop(photos[int(rng.integers(len(photos)))], (s, s), rng)
        else:
            bg = np.broadcast_to(rng.uniform(0, 1, 3), (s, s, 3)).astype(np.float32).copy()
        label = int(rng.integers(11))
        if label < 10:
            ink = _font_glyph(label, int(rng.integers(16, 41)), fonts[int(rng.integers(len(fonts)))], rng,
                              capture=bool(rng.random() < 0.5))
            h, w = min(ink.shape[0], s), min(ink.shape[1], s)
            y0, x0 = int(rng.integers(0, s - h + 1)), int(rng.integers(0, s - w + 1))
            a = ink[:h, :w, None]
            patch = bg[y0:y0 + h, x0:x0 + w]
            bg[y0:y0 + h, x0:x0 + w] = patch * (1 - a) + _ink_colour(patch, rng) * a
        xs[i] = (np.clip(bg + rng.normal(0, 0.02, bg.shape), 0, 1) * 255).astype(np.uint8)
        ys[i] = label
    return xs, ys


def pretrained_backbone(cfg: PretrainConfig, log: Callable[[str], None] = print) -> Path:
    """The cached backbone file (torchvision ResNet-18 names, without ``fc``), trained first if missing."""
    from safetensors.torch import save_file

    from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
    from simreal.adapt.trainer import Trainer
    from simreal.datasets.torchdata import ArraySource
    from simreal.runtime.io import atomic_path
    from simreal.runtime.seeding import seed_everything
    from simreal.tasks.classify import ClassifyTask

    key = hashlib.sha256(json.dumps({"v": VERSION, **asdict(cfg)}, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir() / f"backbone-{key}.safetensors"
    if path.is_file():
        return path
    log(f"pretraining the backbone once on {cfg.crops} synthetic digit crops (cached at {path})")
    xs, ys = digit_crops(cfg)
    x = torch.from_numpy(xs).permute(0, 3, 1, 2).float() / 255.0
    task = ClassifyTask(11, [*map(str, range(10)), "background"])
    seed_everything(cfg.seed)
    model = task.build_model("resnet18", 3, (cfg.size, cfg.size), base_width=cfg.base_width)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(task, model, [(ArraySource("crops", 0, x, ys.tolist()), "source")], MethodConfig(name="source_only"),
                OptimConfig(steps=cfg.steps, batch_per_domain=cfg.batch, lr=cfg.lr, lr_schedule="cosine"),
                SelectionConfig(policy="last", eval_every=cfg.steps), cfg.seed, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
    state = {k: v.detach().contiguous() for k, v in model.backbone.state_dict().items() if not k.startswith("fc.")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path


def load_backbone(model: torch.nn.Module, arch: str, path: Path) -> None:
    """Copy the pretrained ResNet into the benchmark model of ``arch`` (classifier, unet or maskrcnn)."""
    from safetensors.torch import load_file

    from simreal.nn.weights import load_into

    state = load_file(str(path))
    target = {"classifier": lambda m: m.backbone, "unet": lambda m: m.net.encoder,
              "maskrcnn": lambda m: m.net.backbone.body}[arch](model)
    load_into(target, state, str(path), allow_missing=("fc.",))
