"""Classifying face chips with a finished ``simreal train`` run, preprocessed exactly as training
read them (:class:`simreal.datasets.torchdata.FolderSource`: colour mode, bilinear resize, 0..1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from simreal.faces.errors import FacesError


def chip_tensor(chip: np.ndarray, size: tuple[int, int], channels: int) -> torch.Tensor:
    """A chip (H, W, 3 uint8) as the (C, H, W) float tensor the run's model takes."""
    img = Image.fromarray(chip).convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    t = torch.from_numpy(arr)
    return (t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)).contiguous()


def chip_geometry(domain_paths: list[str], default: tuple[int, float] = (112, 0.3)) -> tuple[int, float]:
    """(chip size, padding) the run's training chips were extracted with (from the first domain
    that records it), so live chips are aligned the same way."""
    for p in domain_paths:
        info = Path(p) / "dataset.json"
        if info.is_file():
            try:
                cfg = json.loads(info.read_text())["provenance"]["config"]
                return int(cfg["chip_size"]), float(cfg["padding"])
            except (KeyError, TypeError, ValueError, json.JSONDecodeError):
                continue
    return default


class ChipClassifier:
    """A run's model over face chips: ``probs(chips) -> (N, K)`` class probabilities."""

    def __init__(self, run: str | Path, device: str = "auto") -> None:
        from simreal.adapt.api import load_run
        from simreal.runtime.device import resolve_device

        cfg, task, model, meta = load_run(run)
        if cfg.task != "classify":
            raise FacesError(f"{run}: a run of task {cfg.task!r}; the faces stage needs a 'classify' run")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.classes: list[str] = list(meta["classes"])
        self.size = tuple(cfg.data.image_size)
        self.channels = cfg.data.channels
        self.chip_size, self.padding = chip_geometry([d.path for d in cfg.data.domains])
        self.meta: dict[str, Any] = meta

    @classmethod
    def from_model(cls, model: torch.nn.Module, classes: list[str], image_size: tuple[int, int] = (64, 64),
                   channels: int = 3, chip_size: int = 112, padding: float = 0.3) -> ChipClassifier:
        """A classifier around an in-memory model (benchmarks, tests)."""
        self = cls.__new__(cls)
        self.device = torch.device("cpu")
        self.model, self.classes = model.eval(), list(classes)
        self.size, self.channels, self.chip_size, self.padding = tuple(image_size), channels, chip_size, padding
        self.meta = {}
        return self

    @torch.no_grad()
    def probs(self, chips: list[np.ndarray], batch: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(chips), batch):
            x = torch.stack([chip_tensor(c, self.size, self.channels) for c in chips[i:i + batch]]).to(self.device)
            logits, _ = self.model(x)
            out.append(torch.softmax(logits, 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)
