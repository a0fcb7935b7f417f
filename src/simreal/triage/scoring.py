"""Per-label scores (and detector boxes) of frames, for any simreal run or a torchvision-format
classifier file.

Preprocessing is split in two so the costly part runs where frames are decoded:
:func:`prepare` (PIL image -> uint8 array at the model's input size; no torch) and
:meth:`Scorer.score` (arrays -> tensors -> ``task.predict``). For a simreal run, :func:`prepare` is
exactly the preprocessing of training (``simreal.datasets.torchdata``: PIL bilinear resize to the
run's ``image_size``, its channels, values / 255). A classifier file gets torchvision's evaluation
preprocessing: shorter side resized, centre crop, ImageNet mean/std.

Scores per task: classify = softmax probability of each class; detect = per label, the highest box
score after NMS (0 without a box), boxes kept; segment = per class, the mean of the top 5 % of its
pixel probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from simreal.datasets.imageio import image_mode, resize_image
from simreal.errors import ConfigError, RunError
from simreal.triage.config import ModelSpec
from simreal.triage.store import stable_hash

SCORABLE_TASKS = ("classify", "detect", "segment")


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes a model input: size (H, W), channels, and the torchvision-style
    shorter-side resize + centre crop with mean/std (classifier files) or plain resize (runs)."""

    size: tuple[int, int]
    channels: int
    resize_short: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @property
    def key(self) -> str:
        h, w = self.size
        return f"{h}x{w}x{self.channels}" + (f"-r{self.resize_short}" if self.resize_short else "")


def prepare(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """The uint8 model input (H x W, or H x W x 3) of an RGB frame."""
    if spec.resize_short is None:
        return resize_image(np.asarray(img.convert(image_mode(spec.channels))), spec.size)
    w, h = img.size
    s = spec.resize_short / min(w, h)
    nw, nh = max(spec.size[1], round(w * s)), max(spec.size[0], round(h * s))
    im = img.convert(image_mode(spec.channels)).resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = int(round((nw - spec.size[1]) / 2.0)), int(round((nh - spec.size[0]) / 2.0))
    return np.asarray(im.crop((left, top, left + spec.size[1], top + spec.size[0])))


@dataclass
class ModelInfo:
    """What the pipeline needs to know about a model without loading it (no torch)."""

    name: str
    source: str  # "run" | "weights"
    path: str
    task: str
    labels: list[str]
    keep: list[int]
    spec: InputSpec
    key: str
    arch: str = ""
    box_threshold: float = 0.05
    max_boxes: int = 20
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kept_labels(self) -> list[str]:
        return [self.labels[i] for i in self.keep]

    def describe(self) -> dict[str, Any]:
        """The model's entry in result files."""
        return {"task": self.task, "labels": self.kept_labels, "source": self.source, "path": self.path,
                "arch": self.arch, "input": list(self.spec.size) + [self.spec.channels], "key": self.key}


def _read_labels(spec: ModelSpec) -> list[str]:
    if spec.labels:
        return list(spec.labels)
    p = Path(str(spec.labels_file))
    if not p.is_file():
        raise ConfigError(f"{p}: labels_file not found")
    names = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ConfigError(f"{p}: labels_file holds no label")
    return names


def describe_model(spec: ModelSpec, file_hash: Callable[[Path], str]) -> ModelInfo:
    """Check a model spec (run folder or classifier file) and describe it; errors name the path."""
    import json

    name = spec.display_name()
    if spec.run is not None:
        from simreal.runtime.runstore import RunStore

        run = Path(spec.run)
        try:
            store = RunStore.open(run, "train")
        except RunError as exc:
            raise RunError(f"model {name!r}: {exc}") from None
        final = store.model_path("final")
        if not store.has_model("final"):
            raise RunError(f"{run}: model {name!r}: run has no final model ({final.relative_to(run)}); "
                           "finish training first")
        meta_text = final.with_suffix(".json").read_text(encoding="utf-8")
        meta = json.loads(meta_text)
        task = str(meta.get("task"))
        if task not in SCORABLE_TASKS:
            raise RunError(f"{run}: model {name!r}: run is of task {task!r}; triage scores "
                           f"{', '.join(SCORABLE_TASKS)} runs")
        labels = [str(c) for c in meta["classes"]]
        size = tuple(int(v) for v in meta["image_size"])
        ispec = InputSpec((size[0], size[1]), int(meta.get("channels", 3)))
        key_src: dict[str, Any] = {"weights": file_hash(final), "meta": meta_text}
        path, arch = str(run), str(meta.get("arch", ""))
    else:
        w = Path(str(spec.weights))
        if not w.is_file():
            raise ConfigError(f"{w}: model {name!r}: weights file not found")
        labels = _read_labels(spec)
        task, arch, path = "classify", spec.arch, str(w)
        ispec = InputSpec((spec.image_size, spec.image_size), 3, spec.resize, tuple(spec.mean), tuple(spec.std))
        key_src = {"weights": file_hash(w), "arch": arch, "labels": labels, "spec": ispec.key,
                   "mean": spec.mean, "std": spec.std}
    if spec.keep:
        missing = [k for k in spec.keep if k not in labels]
        if missing:
            raise ConfigError(f"model {name!r}: keep: label {missing[0]!r} is not among its labels {labels}")
        keep = [labels.index(k) for k in spec.keep]
    else:
        keep = list(range(len(labels)))
    key_src.update(keep=keep, box_threshold=spec.box_threshold, max_boxes=spec.max_boxes)
    return ModelInfo(name=name, source="run" if spec.run else "weights", path=path, task=task, labels=labels,
                     keep=keep, spec=ispec, key=stable_hash(key_src, 16), arch=arch,
                     box_threshold=spec.box_threshold, max_boxes=spec.max_boxes)


def _to_cpu(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _on_device(model: Any, device: Any) -> Any:
    """``model`` on ``device`` behind a CPU interface (inputs moved there, outputs brought back), so
    the tasks' ``predict`` (which converts to numpy) works on any device."""
    import torch

    class OnDevice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model.to(device)

        def forward(self, x: torch.Tensor) -> Any:
            return _to_cpu(self.inner(x.to(device)))

    return OnDevice().eval()


class Scorer:
    """A loaded model that turns prepared frames into per-label scores and boxes."""

    def __init__(self, info: ModelInfo, device: str = "auto") -> None:
        import torch

        from simreal.runtime.device import resolve_device

        self.info = info
        self.device = resolve_device(device)
        if info.source == "run":
            import simreal

            loaded = simreal.load_run(info.path)
            self.task, model = loaded.task, loaded.model
        else:
            model, self.task = self._classifier_file(info)
        self.model = _on_device(model.eval(), self.device)
        self.mean = self.std = None
        if info.spec.mean is not None:
            self.mean = torch.tensor(info.spec.mean).view(1, -1, 1, 1)
            self.std = torch.tensor(info.spec.std).view(1, -1, 1, 1)

    @staticmethod
    def _classifier_file(info: ModelInfo) -> tuple[Any, Any]:
        from simreal.errors import WeightsError
        from simreal.nn import resnet
        from simreal.nn.weights import load_into, load_state_dict_file, map_torchvision_keys
        from simreal.tasks.base import TaskModel
        from simreal.tasks.classify import ClassifyTask

        state = map_torchvision_keys(load_state_dict_file(info.path))
        n_out = state["fc.weight"].shape[0] if "fc.weight" in state else None
        if n_out is not None and n_out != len(info.labels):
            raise WeightsError(f"{info.path}: model {info.name!r} has {n_out} outputs but {len(info.labels)} "
                               "labels were given")
        net = getattr(resnet, info.arch)(len(info.labels), 3)
        load_into(net, state, info.path)

        class FileClassifier(TaskModel):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> Any:
                return self.net(x), x.new_zeros((x.shape[0], 1))

        return FileClassifier(), ClassifyTask(len(info.labels), info.labels)

    def batch(self, arrays: Sequence[np.ndarray]) -> Any:
        """Prepared uint8 frames -> the model input tensor (exactly ``torchdata.to_tensor`` per frame)."""
        import torch

        from simreal.datasets.torchdata import to_tensor

        x = torch.stack([to_tensor(a) for a in arrays])
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x

    def score(self, arrays: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Per frame: ``scores`` (one per kept label) and ``boxes`` ``[x1, y1, x2, y2, score, kept label
        index]`` in model-input pixels (detectors only)."""
        import torch

        if not arrays:
            return []
        with torch.no_grad():
            pred = self.task.predict(self.model, self.batch(arrays))
        keep = self.info.keep
        out: list[dict[str, Any]] = []
        if self.info.task in ("classify", "segment"):
            prob = np.asarray(pred["prob"], dtype=np.float64)
            for row in prob:
                out.append({"scores": [float(row[i]) for i in keep], "boxes": []})
            return out
        where = {c: j for j, c in enumerate(keep)}
        for det in pred["dets"]:
            labels, scores, boxes = (np.asarray(det[k]) for k in ("labels", "scores", "boxes"))
            per = np.zeros(len(self.info.labels))
            for lab, s in zip(labels.tolist(), scores.tolist(), strict=True):
                per[lab] = max(per[lab], s)
            order = np.argsort(-scores, kind="stable")
            kept_boxes = []
            for j in order:
                if scores[j] < self.info.box_threshold or len(kept_boxes) >= self.info.max_boxes:
                    break
                if int(labels[j]) in where:
                    kept_boxes.append([*(float(v) for v in boxes[j]), float(scores[j]), where[int(labels[j])]])
            out.append({"scores": [float(per[i]) for i in keep], "boxes": kept_boxes})
        return out
