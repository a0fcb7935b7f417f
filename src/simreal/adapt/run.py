"""The run folder (DESIGN "Run"): ``config.yaml`` (resolved), ``checkpoints/`` (safetensors + JSON
metadata; optimiser states as ``.opt.pt`` read with ``weights_only=True``), ``metrics.jsonl``,
``log.txt`` and ``report.md`` with PNG plots. A run resumes from its last checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from simreal.errors import RunError
from simreal.runtime.io import atomic_path, atomic_write_json

_STEP = re.compile(r"^step_(\d+)\.json$")


class RunStore:
    """Checkpoints and metrics of one run folder."""

    def __init__(self, root: str | Path, keep: int = 2) -> None:
        self.root = Path(root)
        self.ck = self.root / "checkpoints"
        self.ck.mkdir(parents=True, exist_ok=True)
        self.keep = keep

    # checkpoints ------------------------------------------------------------
    @staticmethod
    def _flat(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
        return {f"{name}.{k}": v.detach().contiguous().clone() for name, m in modules.items()
                for k, v in m.state_dict().items()}

    def save_checkpoint(self, step: int, modules: dict[str, nn.Module], optims: dict[str, torch.optim.Optimizer],
                        meta: dict[str, Any]) -> None:
        stem = self.ck / f"step_{step:07d}"
        with atomic_path(stem.with_suffix(".safetensors")) as tmp:
            save_file(self._flat(modules), str(tmp))
        with atomic_path(stem.with_suffix(".opt.pt")) as tmp:
            torch.save({k: o.state_dict() for k, o in optims.items()}, tmp)
        atomic_write_json(stem.with_suffix(".json"), {"step": step, "modules": sorted(modules), **meta})
        for old in self._steps()[: -self.keep]:
            for suf in (".json", ".safetensors", ".opt.pt"):
                (self.ck / f"step_{old:07d}{suf}").unlink(missing_ok=True)

    def _steps(self) -> list[int]:
        out = []
        for p in self.ck.iterdir():
            m = _STEP.match(p.name)
            if m and p.with_suffix(".safetensors").is_file():
                out.append(int(m.group(1)))
        return sorted(out)

    def latest_checkpoint(self) -> dict[str, Any] | None:
        steps = self._steps()
        if not steps:
            return None
        stem = self.ck / f"step_{steps[-1]:07d}"
        meta = json.loads(stem.with_suffix(".json").read_text())
        return {"step": steps[-1], "stem": stem, "meta": meta}

    def restore(self, ck: dict[str, Any], modules: dict[str, nn.Module],
                optims: dict[str, torch.optim.Optimizer]) -> None:
        state = load_file(str(ck["stem"].with_suffix(".safetensors")))
        for name, m in modules.items():
            sub = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
            try:
                m.load_state_dict(sub)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise RunError(f"{ck['stem']}: checkpoint does not fit the model ({first})") from None
        opt_path = ck["stem"].with_name(ck["stem"].name + ".opt.pt")
        if opt_path.is_file():
            ostate = torch.load(str(opt_path), map_location="cpu", weights_only=True)
            for k, o in optims.items():
                if k in ostate:
                    o.load_state_dict(ostate[k])

    def save_best(self, model: nn.Module, meta: dict[str, Any]) -> None:
        save_model(self.ck / "best.safetensors", model, meta)

    def load_best_state(self) -> dict[str, torch.Tensor] | None:
        p = self.ck / "best.safetensors"
        return load_file(str(p)) if p.is_file() else None

    # metrics -----------------------------------------------------------------
    def log_metrics(self, rec: dict[str, Any]) -> None:
        with open(self.root / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        p = self.root / "metrics.jsonl"
        if not p.is_file():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, step: int) -> None:
        """Drop records after ``step`` (written after the checkpoint a resumed run restarts from)."""
        recs = [r for r in self.read_metrics() if int(r.get("step", 0)) <= step]
        p = self.root / "metrics.jsonl"
        if p.is_file():
            with atomic_path(p) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in recs))


def save_model(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Model weights as safetensors plus a JSON metadata file beside them."""
    p = Path(path)
    with atomic_path(p) as tmp:
        save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(tmp),
                  metadata={"simreal": json.dumps(meta)[:60000]})
    atomic_write_json(p.with_suffix(".json"), meta)
