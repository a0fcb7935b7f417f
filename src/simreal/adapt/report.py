"""report.md writers for ``simreal train`` (curves, selection) and ``simreal eval`` (metrics, plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simreal.adapt.config import TrainConfig
from simreal.metrics.plots import save_curves
from simreal.runtime.io import atomic_write_json, atomic_write_text


def _selection_line(sel: dict[str, Any]) -> str:
    who = "USES TARGET LABELS (oracle selection, explicitly allowed)" if sel.get("uses_target_labels") else \
        "no target labels used"
    return f"Model selection: `{sel.get('policy')}` at step {sel.get('step')} (score {sel.get('score')}); {who}."


def write_train_report(out: Path, cfg: TrainConfig, history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    steps = [r for r in history if "loss" in r]
    doms = ", ".join(f"{d.name or Path(d.path).name} ({d.role}, {'labelled' if d.labelled else 'unlabelled'})"
                     for d in cfg.data.domains)
    lines = [f"# Training run: {cfg.task} / {cfg.method.name}", "", f"- domains: {doms}",
             f"- model: {cfg.model.arch}, steps: {cfg.optim.steps}, batch per domain: {cfg.optim.batch_per_domain}",
             f"- {_selection_line(summary['selection'])}"]
    if "source_val_quality" in summary:
        lines.append(f"- source validation quality of the selected model: {summary['source_val_quality']:.4f}")
    if steps:
        x = np.array([r["step"] for r in steps])
        curves = [(x, np.array([r.get(k, np.nan) for r in steps]), k) for k in ("loss", "task_loss", "domain_loss")
                  if any(k in r for r in steps)]
        save_curves(out / "loss.png", curves, "step", "loss", "training losses")
        lines += ["", "![losses](loss.png)"]
        dkeys = sorted({k for r in steps for k in r if k.startswith("disc_acc/")})
        if dkeys:
            save_curves(out / "disc_acc.png", [(x, np.array([r.get(k, np.nan) for r in steps]), k) for k in dkeys],
                        "step", "accuracy", "discriminator accuracy per domain")
            lines += ["", "![discriminator accuracy](disc_acc.png)"]
    evals = [r for r in history if r.get("eval")]
    if evals:
        keys = sorted({k for r in evals for k in r if k.startswith(("select/", "source_val"))})
        lines += ["", "| step | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for r in evals:
            lines.append(f"| {r['step']} | " + " | ".join(f"{r.get(k, float('nan')):.4f}" for k in keys) + " |")
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def _fmt(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def write_eval_report(out: Path, task: Any, model: Any, src: Any, meta: dict[str, Any], data: str) -> dict[str, Any]:
    from simreal.adapt.selection import predict_all

    out.mkdir(parents=True, exist_ok=True)
    preds = predict_all(task, model, src)
    targets = src.get(list(range(len(src))))[1]
    res = task.evaluate(preds, targets, out)
    res["selection"] = meta.get("selection")
    atomic_write_json(out / "metrics.json", _jsonable(res))
    lines = [f"# Evaluation: {data}", "", f"- run model: {meta.get('arch')} / {meta.get('method')}",
             f"- {_selection_line(meta.get('selection') or {})}", "", "| metric | value |", "|---|---|"]
    for k, v in res.items():
        if isinstance(v, (int, float)) or v is None:
            lines.append(f"| {k} | {_fmt(v)} |")
    for key, what in (("per_class_accuracy", "accuracy"), ("per_class_iou", "IoU")):
        if key in res:
            lines += ["", f"| class | {what} |", "|---|---|"]
            lines += [f"| {c} | {_fmt(v)} |" for c, v in res[key].items()]
    if isinstance(res.get("per_class"), dict) and res["per_class"]:  # detection: several figures per class
        cols = list(next(iter(res["per_class"].values())))
        lines += ["", "| class | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        lines += [f"| {c} | " + " | ".join(_fmt(r.get(k)) for k in cols) + " |" for c, r in res["per_class"].items()]
    if res.get("f1_sweep"):  # detection: the operating point is a choice
        lines += ["", "Score threshold sweep (IoU 0.5; the best F1 here is chosen with these labels):", "",
                  "| threshold | precision | recall | F1 |", "|---|---|---|---|"]
        lines += [f"| {r['threshold']:.2f} | {_fmt(r['precision'])} | {_fmt(r['recall'])} | {_fmt(r['f1'])} |"
                  for r in res["f1_sweep"]]
    if "confusion_matrix" in res:
        lines += ["", "Confusion matrix (rows = true class): ![confusion](confusion.png)"]
    for png in ("roc.png", "pr.png", "pr_image.png", "cmc.png", "samples.png"):
        if (out / png).is_file():
            lines += ["", f"![{png[:-4]}]({png})"]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    return res


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v
