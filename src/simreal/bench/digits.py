"""The digits sim-to-real benchmark: synthetic font digits -> sklearn's 8x8 handwritten digits.

Rows (test accuracy on the real test part, mean ± std over seeds): source only, mixed with k
labelled real digits per class, DANN, ADDA, the refined rows (synthetic digits refined towards the unlabelled
real ones by :mod:`simreal.refine.arrays`, then trained like source only: plain CycleGAN, CycleGAN with the
semantic consistency of the frozen source-only model (CyCADA), the same followed by DANN against the real digits
from the model trained on the refined ones (CyCADA's pixel + feature recipe), CUT with semantic consistency,
and CycleGAN whose consistency judge is the DANN model (adapted with the unlabelled real digits) and whose
discriminators are class-conditional (the synthetic label; the judge's pseudo-label on real digits), alone and
followed by DANN the same way), fine-tuning with k real per class, and the target-supervised oracle. No row uses
target labels for model selection: the selection policy (default ``last``) is printed with the table.

Each refiner variant (and the raw synthetic set) also gets its task-space FID to the real adaptation digits
(pooled features of the source-only model, :mod:`simreal.refine.select`), at the end and at the
``refine_checkpoints`` steps, against the accuracy of a model trained on its output: the label-free selection
table with Spearman's ρ.
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
from simreal.refine.arrays import ArrayRefinerSettings
from simreal.runtime.compute import Compute
from simreal.runtime.seeding import seed_everything
from simreal.tasks.classify import ClassifyTask

ADAPTED_SC = "refined + SC (adapted judge + cond. D)"
REFINED_ROWS = ("refined (CycleGAN)", "refined + SC", "refined + SC + DANN", "refined (CUT) + SC", ADAPTED_SC,
                f"{ADAPTED_SC} + DANN")
ROWS = ("source only", "mixed (k real/class)", "DANN", "ADDA", *REFINED_ROWS, "fine-tune (k real/class)",
        "oracle (all real labels)")
SC_SETTINGS = ArrayRefinerSettings()  # the refiner of the semantic-consistency rows (chosen without labels)
CUT_SETTINGS = ArrayRefinerSettings(model="cut")
# the adapted-judge rows: class-conditional discriminators, a larger generator free to redraw the strokes
ADAPTED_SETTINGS = ArrayRefinerSettings(ngf=16, n_blocks=6, lambda_identity=0.1, conditional=True)


@dataclass
class DigitsConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    n_per_class: int = 500
    k_real: int = 5
    steps: int = 1200
    adda_steps: int = 800
    finetune_steps: int = 300
    refine_steps: int = 600  # refiner iterations (capped at 2 × ``steps`` so tiny tables stay tiny)
    adapted_refine_steps: int = 2000  # the adapted-judge refiner (its task-space FID still falls at 2000; capped too)
    sc_weight: float = 1.0  # semantic-consistency weight (CyCADA: 1)
    sc_settings: ArrayRefinerSettings = field(default_factory=lambda: SC_SETTINGS)
    cut_settings: ArrayRefinerSettings = field(default_factory=lambda: CUT_SETTINGS)
    adapted_settings: ArrayRefinerSettings = field(default_factory=lambda: ADAPTED_SETTINGS)
    refine_checkpoints: tuple[int, ...] = ()  # extra refiner steps scored in the selection table (each trains one
    # more classifier per variant)
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
             log: Callable[[str], None] = print, selections: dict[str, dict[str, Any]] | None = None,
             selection_points: list[dict[str, Any]] | None = None) -> dict[str, float | None]:
    """Test accuracy of every row for one seed; ``selections`` receives each row's model selection (policy,
    whether target labels were used) as the trainer reports it; ``selection_points`` the refiner variants'
    task-space FID/KID to the real digits with the accuracy trained on them."""
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

    def dann_method() -> MethodConfig:
        return MethodConfig(name="dann", alpha=cfg.alpha, schedule="dann", disc_hidden=[256, 256])

    dann_model: dict[str, Any] = {}

    def dann() -> Any:
        if "m" not in dann_model:
            dann_model["m"] = fit(dann_method(), [(syn, "source"), (tgt, "target")])
        return dann_model["m"]

    def dann_judge() -> Any:
        """The DANN model as the consistency judge (trained on the source and the unlabelled real digits)."""
        return copy.deepcopy(dann())

    row("source only", source_only)
    row("mixed (k real/class)", lambda: fit(MethodConfig(name="mixed"), [(syn, "source"), (real_k, "target")]))
    row("DANN", dann)
    row("ADDA", lambda: fit(MethodConfig(name="adda", adda_steps=cfg.adda_steps, disc_hidden=[256, 256]),
                            [(syn, "source"), (tgt, "target")], model=pretrained(), pretrained=True))

    refined_sets: dict[str, np.ndarray] = {}

    def refiner_steps(steps: int | None) -> int:
        """A refiner's iterations: its own count (default ``refine_steps``), capped at twice ``steps``."""
        return min(steps or cfg.refine_steps, 2 * cfg.steps)

    def src_features(x: np.ndarray) -> np.ndarray:
        from simreal.refine.select import task_features

        return task_features(pretrained(), [_t(x)], lambda b: b.to(ctx.device))

    def score(variant: str, step: int | None, x: np.ndarray, acc: float | None) -> None:
        """A point of the selection table: task-space FID of ``x`` to the real adaptation digits vs accuracy."""
        if selection_points is None:
            return
        from simreal.refine.select import task_scores

        if "real_f" not in src_model:
            src_model["real_f"] = src_features(s.target_adapt_x)
        real_f = src_model["real_f"]
        sc = task_scores(src_features(x), real_f)
        selection_points.append({"seed": seed, "variant": variant, "step": step, **sc, "accuracy": acc})

    def refined_source(x: np.ndarray) -> ArraySource:
        return ArraySource("refined", 0, _t(x), s.source_y.tolist())

    def train_on(x: np.ndarray) -> Any:
        return fit(MethodConfig(name="source_only"), [(refined_source(x), "source"), (tgt, "target")])

    def refine(variant: str, settings: ArrayRefinerSettings | None, sc: bool,
               judge: Callable[[], Any] = pretrained, steps: int | None = None) -> np.ndarray:
        from simreal.refine.arrays import array_consistency, refine_arrays

        if variant in refined_sets:
            return refined_sets[variant]
        steps = refiner_steps(steps)
        cons = array_consistency(judge(), cfg.sc_weight, scale=(settings or ArrayRefinerSettings()).scale,
                                 num_classes=10) if sc else None
        at: dict[int, np.ndarray] = {}
        wanted = tuple(c for c in cfg.refine_checkpoints if 0 < c < steps)
        refined_sets[variant] = refine_arrays(
            s.source_x, s.target_adapt_x, seed, steps=steps, settings=settings, device=ctx.device, consistency=cons,
            synthetic_y=s.source_y if sc else None, checkpoints=wanted, on_checkpoint=at.__setitem__)
        for step, x in sorted(at.items()):  # earlier checkpoints: one more classifier each
            score(variant, step, x, _accuracy(train_on(x), test_x, test_y) if selection_points is not None else None)
        return refined_sets[variant]

    refined_models: dict[str, Any] = {}

    def refined_row(variant: str, settings: ArrayRefinerSettings | None, sc: bool,
                    judge: Callable[[], Any] = pretrained, steps: int | None = None) -> Any:
        """The classifier trained on a refiner's output (trained once per variant; scored in the selection table)."""
        if variant not in refined_models:
            x = refine(variant, settings, sc, judge, steps)
            refined_models[variant] = train_on(x)
            score(variant, refiner_steps(steps), x, _accuracy(refined_models[variant], test_x, test_y))
        return refined_models[variant]

    def refined_dann(variant: str, settings: ArrayRefinerSettings | None, sc: bool,
                     judge: Callable[[], Any] = pretrained, steps: int | None = None) -> Any:
        """CyCADA's feature stage: DANN on the refined digits, starting from the model trained on them."""
        start = copy.deepcopy(refined_row(variant, settings, sc, judge, steps))
        x = refine(variant, settings, sc, judge, steps)
        return fit(dann_method(), [(refined_source(x), "source"), (tgt, "target")], model=start, pretrained=True)

    row("refined (CycleGAN)", lambda: refined_row("CycleGAN", None, False))
    row("refined + SC", lambda: refined_row("CycleGAN + SC", cfg.sc_settings, True))
    row("refined + SC + DANN", lambda: refined_dann("CycleGAN + SC", cfg.sc_settings, True))
    row("refined (CUT) + SC", lambda: refined_row("CUT + SC", cfg.cut_settings, True))
    adapted = "CycleGAN + SC (adapted judge + cond. D)"
    row(ADAPTED_SC, lambda: refined_row(adapted, cfg.adapted_settings, True, dann_judge, cfg.adapted_refine_steps))
    row(f"{ADAPTED_SC} + DANN", lambda: refined_dann(adapted, cfg.adapted_settings, True, dann_judge,
                                                     cfg.adapted_refine_steps))
    if selection_points is not None and "source only" in results and any(r in cfg.rows for r in REFINED_ROWS):
        score("raw synthetic", 0, s.source_x, results["source only"])
    row("fine-tune (k real/class)", lambda: fit(
        MethodConfig(name="finetune", finetune_steps=cfg.finetune_steps, finetune_lr_factor=0.3),
        [(syn, "source"), (real_k, "target")], model=pretrained(), pretrained=True))
    row("oracle (all real labels)", lambda: fit(MethodConfig(name="source_only"), [(real_all, "source")]))
    return results


def _log_stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def _seed_task(task: tuple[DigitsConfig, int]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """One seed in a worker process: (results, selections, selection points); logs go to stderr."""
    cfg, seed = task
    torch.set_num_threads(cfg.threads)
    sels: dict[str, dict[str, Any]] = {}
    points: list[dict[str, Any]] = []
    return run_seed(cfg, seed, log=_log_stderr, selections=sels, selection_points=points), sels, points


def run_table(cfg: DigitsConfig, log: Callable[[str], None] = print, workers: int = 1) -> dict[str, Any]:
    """All rows over all seeds: {"rows": {name: [acc per seed]}, "wall_s": ..., "config": ...}. ``workers`` > 1
    runs the seeds in that many processes (same numbers; worker logs go to stderr)."""
    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)  # tiny models: intra-op threads only add contention
    per: dict[str, list[float | None]] = {r: [] for r in cfg.rows}
    used: dict[str, set[tuple[str, bool]]] = {r: set() for r in cfg.rows}
    points: list[dict[str, Any]] = []
    if workers > 1:
        from simreal.errors import SimrealError
        from simreal.runtime.executors import map_tasks

        done: dict[int, tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]] = {}
        for (_, seed), out, err in map_tasks(_seed_task, [(cfg, sd) for sd in cfg.seeds], workers=workers):
            if err is not None:
                raise SimrealError(f"digits benchmark, seed {seed}: {err}")
            done[seed] = out
    else:
        done = {}
        for seed in cfg.seeds:
            sels: dict[str, dict[str, Any]] = {}
            pts: list[dict[str, Any]] = []
            done[seed] = (run_seed(cfg, seed, log=log, selections=sels, selection_points=pts), sels, pts)
    for seed in cfg.seeds:
        res, sels, pts = done[seed]
        points += pts
        for r in cfg.rows:
            per[r].append(res.get(r))
            if r in sels:
                used[r].add((str(sels[r]["policy"]), bool(sels[r]["uses_target_labels"])))
    return {"rows": per, "wall_s": time.perf_counter() - t0, "config": cfg,
            "selection": {r: sorted(v) for r, v in used.items()}, "refiner_selection": points}


def selection_table(points: list[dict[str, Any]]) -> str:
    """Per refiner variant (and checkpoint): task-space FID to the real digits vs the accuracy of the model trained
    on its output, mean over seeds, with Spearman's ρ over all (variant, checkpoint, seed) points and the mean of
    the per-seed ρ. Empty when there are no points."""
    from simreal.refine.select import spearman

    pts = [p for p in points if p.get("accuracy") is not None]
    if len(pts) < 2:
        return ""
    keys = sorted({(p["variant"], p["step"]) for p in pts}, key=lambda k: (k[0] != "raw synthetic", k[0], k[1]))
    lines = ["| refiner variant | step | task-space FID → real | task-space KID → real | accuracy trained on it |",
             "|---|---|---|---|---|"]
    for v, st in keys:
        g = [p for p in pts if (p["variant"], p["step"]) == (v, st)]
        fid, kid = np.mean([p["task_fid"] for p in g]), np.mean([p["task_kid"] for p in g])
        acc = 100 * np.asarray([p["accuracy"] for p in g])
        lines.append(f"| {v} | {st} | {fid:.2f} | {kid:.4f} | {acc.mean():.1f} ± {acc.std():.1f} |")
    rho = spearman([p["task_fid"] for p in pts], [p["accuracy"] for p in pts])
    by_seed = [[p for p in pts if p["seed"] == sd] for sd in sorted({p["seed"] for p in pts})]
    per_seed = [spearman([p["task_fid"] for p in g], [p["accuracy"] for p in g]) for g in by_seed if len(g) >= 3]
    seed_txt = f"; mean per-seed ρ {np.nanmean(per_seed):+.2f} over {len(per_seed)} seeds" if per_seed else ""
    lines += ["", f"Spearman ρ(task-space FID, accuracy) over {len(pts)} points: {rho:+.2f}{seed_txt} "
                  "(negative: a lower FID to the real set goes with a better model)."]
    return "\n".join(lines)


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
            lines.append(f"| {name.replace('k ', f'{cfg.k_real} ')} | n/a |")
            continue
        a = 100 * np.asarray(vals)
        lines.append(f"| {name.replace('k ', f'{cfg.k_real} ')} | {a.mean():.1f} ± {a.std():.1f} |")
    lines.append("")
    lines.append(f"{selection_line(result.get('selection', {}))} Real adaptation/test split drawn per seed. "
                 f"Wall time: {result['wall_s']:.0f} s.")
    sel = selection_table(result.get("refiner_selection", []))
    if sel:
        lines += ["", "Choosing a refiner without target labels (task space: the source-only model's pooled "
                      "features):", "", sel]
    return "\n".join(lines)
