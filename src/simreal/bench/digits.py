"""The digits sim-to-real benchmark: synthetic font digits -> sklearn's 8x8 handwritten digits.

Rows (test accuracy on the real test part, mean ± std over seeds): source only, mixed with k
labelled real digits per class, DANN, ADDA, refined synthetic (when :mod:`simreal.refine` offers
an array refiner), fine-tuning with k real per class, and the target-supervised oracle. No row uses
target labels for model selection: the selection policy (default ``last``) is printed with the table.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
from simreal.adapt.trainer import Trainer
from simreal.bench.digits_data import DigitsSplits, make_splits
from simreal.datasets.torchdata import ArraySource
from simreal.runtime.compute import Compute
from simreal.runtime.seeding import seed_everything
from simreal.tasks.classify import ClassifyTask

ROWS = ("source only", "mixed (k real/class)", "DANN", "ADDA", "refined synthetic", "fine-tune (k real/class)",
        "oracle (all real labels)")


@dataclass
class DigitsConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    n_per_class: int = 500
    k_real: int = 5
    steps: int = 1200
    adda_steps: int = 800
    finetune_steps: int = 300
    refine_steps: int = 600  # refiner iterations (capped at ``steps`` so tiny tables stay tiny)
    batch: int = 32
    width: int = 24
    lr: float = 1e-3
    alpha: float = 1.0
    selection: str = "last"
    threads: int = 1
    device: str = "auto"  # where the networks train (simreal.runtime.device.resolve_device)
    rows: tuple[str, ...] = ROWS
    extra: dict[str, Any] = field(default_factory=dict)


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / 16.0).unsqueeze(1)


def k_per_class(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` samples per class, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c in np.unique(y)])


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        out, _ = model(x.to(next(model.parameters()).device))
    return float((out.argmax(1).cpu().numpy() == y).mean())


def run_seed(cfg: DigitsConfig, seed: int, splits: DigitsSplits | None = None,
             log: Callable[[str], None] = print, selections: dict[str, dict[str, Any]] | None = None
             ) -> dict[str, float | None]:
    """Test accuracy of every row for one seed; ``selections`` receives each row's model selection (policy,
    whether target labels were used) as the trainer reports it."""
    s = splits or make_splits(cfg.n_per_class, 50, seed)
    ctx = Compute.create(cfg.device, where="--device")
    task = ClassifyTask(10, [str(i) for i in range(10)])
    syn = ArraySource("synthetic", 0, _t(s.source_x), s.source_y.tolist())
    val = ArraySource("synthetic-val", 0, _t(s.source_val_x), s.source_val_y.tolist())
    tgt = ArraySource("real", 1, _t(s.target_adapt_x), None, labelled=False)
    kk = k_per_class(s.target_adapt_y, cfg.k_real, seed)
    real_k = ArraySource("real-k", 1, _t(s.target_adapt_x[kk]), s.target_adapt_y[kk].tolist())
    real_all = ArraySource("real", 1, _t(s.target_adapt_x), s.target_adapt_y.tolist())
    test_x, test_y = _t(s.target_test_x), s.target_test_y
    optim = OptimConfig(steps=cfg.steps, batch_per_domain=cfg.batch, lr=cfg.lr, weight_decay=1e-4, lr_schedule="dann")
    sel = SelectionConfig(policy=cfg.selection, eval_every=max(cfg.steps // 6, 1))
    results: dict[str, float | None] = {}

    current: dict[str, Any] = {}

    def fit(method: MethodConfig, sources: list[tuple[ArraySource, str]], model: Any = None, **kw: Any) -> Any:
        seed_everything(seed)
        m = model if model is not None else task.build_model("smallcnn", 1, (8, 8), width=cfg.width)
        tr = Trainer(task, m, sources, method, kw.pop("optim", optim), sel, seed, val=val, progress=False,
                     target_val=None, compute=ctx, **kw)
        res = tr.fit()
        current["selection"] = res.selection
        return res.model

    def row(name: str, make: Callable[[], Any]) -> None:
        if name not in cfg.rows:
            return
        t0 = time.perf_counter()
        current.clear()
        model = make()
        if selections is not None and "selection" in current:
            selections[name] = current["selection"]
        results[name] = None if model is None else _accuracy(model, test_x, test_y)
        acc = "n/a" if results[name] is None else f"{100 * results[name]:.1f}%"
        log(f"seed {seed}: {name:<26} {acc:>7}  ({time.perf_counter() - t0:.0f}s)")

    src_model: dict[str, Any] = {}

    def source_only() -> Any:
        src_model["m"] = fit(MethodConfig(name="source_only"), [(syn, "source"), (tgt, "target")])
        return src_model["m"]

    def pretrained() -> Any:
        if "m" not in src_model:
            source_only()
        return copy.deepcopy(src_model["m"])

    row("source only", source_only)
    row("mixed (k real/class)", lambda: fit(MethodConfig(name="mixed"), [(syn, "source"), (real_k, "target")]))
    row("DANN", lambda: fit(MethodConfig(name="dann", alpha=cfg.alpha, schedule="dann", disc_hidden=[256, 256]),
                            [(syn, "source"), (tgt, "target")]))
    row("ADDA", lambda: fit(MethodConfig(name="adda", adda_steps=cfg.adda_steps, disc_hidden=[256, 256]),
                            [(syn, "source"), (tgt, "target")], model=pretrained(), pretrained=True))

    def refined() -> Any:
        from simreal.refine.arrays import refine_arrays

        rx = refine_arrays(s.source_x, s.target_adapt_x, seed, steps=min(cfg.refine_steps, cfg.steps),
                           device=ctx.device)
        rsrc = ArraySource("refined", 0, _t(rx), s.source_y.tolist())
        return fit(MethodConfig(name="source_only"), [(rsrc, "source"), (tgt, "target")])

    row("refined synthetic", refined)
    row("fine-tune (k real/class)", lambda: fit(
        MethodConfig(name="finetune", finetune_steps=cfg.finetune_steps, finetune_lr_factor=0.3),
        [(syn, "source"), (real_k, "target")], model=pretrained(), pretrained=True))
    row("oracle (all real labels)", lambda: fit(MethodConfig(name="source_only"), [(real_all, "source")]))
    return results


def run_table(cfg: DigitsConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """All rows over all seeds: {"rows": {name: [acc per seed]}, "wall_s": ..., "config": ...}."""
    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)  # tiny models: intra-op threads only add contention
    per: dict[str, list[float | None]] = {r: [] for r in cfg.rows}
    used: dict[str, set[tuple[str, bool]]] = {r: set() for r in cfg.rows}
    for seed in cfg.seeds:
        sels: dict[str, dict[str, Any]] = {}
        res = run_seed(cfg, seed, log=log, selections=sels)
        for r in cfg.rows:
            per[r].append(res.get(r))
            if r in sels:
                used[r].add((str(sels[r]["policy"]), bool(sels[r]["uses_target_labels"])))
    return {"rows": per, "wall_s": time.perf_counter() - t0, "config": cfg,
            "selection": {r: sorted(v) for r, v in used.items()}}


def selection_line(used: dict[str, list[tuple[str, bool]]]) -> str:
    """What model selection the rows actually used, built from the trainers' reports."""
    policies = sorted({p for v in used.values() for p, _ in v})
    oracle = sorted(r for r, v in used.items() if any(t for _, t in v))
    who = ("no row used target labels for selection" if not oracle else
           f"TARGET LABELS USED FOR SELECTION by: {', '.join(oracle)}")
    return f"Model selection: {', '.join(f'`{p}`' for p in policies) or 'none'}; {who}."


def format_table(result: dict[str, Any]) -> str:
    """The table as markdown."""
    cfg: DigitsConfig = result["config"]
    lines = [f"| method | test accuracy on real (mean ± std, {len(cfg.seeds)} seeds) |", "|---|---|"]
    for name, accs in result["rows"].items():
        vals = [a for a in accs if a is not None]
        if not vals:
            note = "n/a (refine not available)" if name == "refined synthetic" else "n/a"
            lines.append(f"| {name.replace('k ', f'{cfg.k_real} ')} | {note} |")
            continue
        a = 100 * np.asarray(vals)
        lines.append(f"| {name.replace('k ', f'{cfg.k_real} ')} | {a.mean():.1f} ± {a.std():.1f} |")
    lines.append("")
    lines.append(f"{selection_line(result.get('selection', {}))} Real adaptation/test split drawn per seed. "
                 f"Wall time: {result['wall_s']:.0f} s.")
    return "\n".join(lines)
