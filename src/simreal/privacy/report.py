"""Reports of the anonymize stage: the run's ``report.md`` (training curves), the audit's ``report.md``
and ``audit.png``, the sweep's ``sweep.md`` and ``sweep.png`` (accuracy versus lambda, like the paper's
figure, with the chance line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simreal.runtime.io import atomic_path, atomic_write_text
from simreal.runtime.runstore import RunStore


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _plt()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_run_report(store: RunStore) -> Path:
    """``report.md`` + ``curves.png`` of a training run (reconstruction, D and private-classifier accuracy,
    privacy term over the steps)."""
    recs = store.read_metrics()
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), dpi=100)
    steps = np.array([r["step"] for r in recs])
    for ax, keys, title in ((axes[0], ("rec",), "reconstruction L1"), (axes[1], ("d_acc", "c_acc"), "accuracy"),
                            (axes[2], ("privacy", "l_priv", "l_obj"), "privacy terms (eqs. 12, 14, 15)")):
        for k in keys:
            ys = np.array([r.get(k, np.nan) for r in recs], dtype=float)
            if np.isfinite(ys).any():
                ax.plot(steps, ys, label=k)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    _save(fig, store.root / "curves.png")
    last = recs[-1] if recs else {}
    samples = sorted((store.root / "samples").glob("*.png")) if (store.root / "samples").is_dir() else []
    lines = [f"# Anonymizer run {store.root.name}", "",
             f"Private label `{store.info.get('private_label')}` ({len(store.info.get('classes', []))} classes), "
             f"{store.info.get('train_images')} training images "
             f"{store.info.get('width')}x{store.info.get('height')}x{store.info.get('channels')}."]
    if store.info.get("identity"):
        lines.append(f"Intertwined mode toward identity `{store.info['identity']}`.")
    lines += ["", "![curves](curves.png)", "", "Last logged values:", "", "| key | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in last.items()]
    if samples:
        lines += ["", f"Samples (original | anonymized): ![samples](samples/{samples[-1].name})"]
    return atomic_write_text(store.root / "report.md", "\n".join(lines) + "\n")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    lo, hi = row["ci"]
    flag = "" if row.get("converged", True) else " (cap)"
    return f"{_pct(row['accuracy'])} [{_pct(lo)}, {_pct(hi)}]{flag}"


def write_audit_report(out: Path, res: dict[str, Any]) -> Path:
    """``report.md`` and ``audit.png`` of an audit result."""
    cfg = res["config"]
    lines = ["# Anonymization audit", "",
             f"Original: `{res.get('datasets', {}).get('original')}`; anonymized: "
             f"`{res.get('datasets', {}).get('anonymized')}`.",
             f"Split: {res['split']['train']} training / {res['split']['test']} test images "
             f"({res['split']['source']}). Attackers trained from scratch to convergence (early stopping on "
             f"{cfg['val_fraction']:.0%} of the training split, patience {cfg['patience']}, at most "
             f"{cfg['max_epochs']} epochs; '(cap)' marks runs stopped by the cap), seeds {cfg['seeds']}. "
             f"Test accuracy in % with {cfg['confidence']:.0%} Wilson intervals.", ""]
    roles = [r for r in ("private", "utility") if r in res]
    for role in roles:
        b = res[role]
        lines += [f"## {role.capitalize()} label `{b['field']}` ({b['classes']} classes, chance "
                  f"{_pct(b['chance'])} %)", "",
                  "| attacker | trained+tested on originals | trained+tested on anonymized | "
                  "trained on originals, tested on anonymized |" + (" shuffled labels |" if "shuffled_control" in b
                                                                     else ""),
                  "|---|---|---|---|" + ("---|" if "shuffled_control" in b else "")]
        for arch in cfg["attackers"]:
            row = (f"| {arch} | {_cell(b['original'].get(arch))} | {_cell(b.get('anonymized', {}).get(arch))} | "
                   f"{_cell(b.get('clear_trained', {}).get(arch))} |")
            if "shuffled_control" in b:
                row += f" {_cell(b['shuffled_control'].get(arch))} |"
            lines.append(row)
        best = b.get("best", {})
        if best:
            lines += ["", f"Best attacker: {_pct(best['anonymized']['accuracy'])} % on anonymized "
                          f"({best['anonymized']['attacker']}) vs {_pct(best['original']['accuracy'])} % on "
                          f"originals ({best['original']['attacker']}); chance {_pct(b['chance'])} %."]
            if b.get("normalized") is not None:
                what = "Normalized leakage" if role == "private" else "Utility retained"
                lines.append(f"{what} (acc - chance) / (acc on originals - chance): {b['normalized']:.3f}.")
        lines.append("")
    q = res["quality"]
    lines += ["## Image quality (anonymized vs original)", "", "| images | PSNR dB | SSIM |", "|---|---|---|"]
    for key in ("all", "test"):
        lines.append(f"| {key} ({q[key]['images']}) | {q[key]['psnr_db']:.2f} ± {q[key]['psnr_db_std']:.2f} | "
                     f"{q[key]['ssim']:.3f} ± {q[key]['ssim_std']:.3f} |")
    lines += ["", "![audit](audit.png)", ""]
    _audit_plot(out / "audit.png", res, roles, cfg["attackers"])
    return atomic_write_text(out / "report.md", "\n".join(lines))


def _audit_plot(path: Path, res: dict[str, Any], roles: list[str], attackers: list[str]) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, len(roles), figsize=(5 * len(roles), 3.6), dpi=100, squeeze=False)
    for ax, role in zip(axes[0], roles, strict=True):
        b = res[role]
        xs = np.arange(len(attackers))
        for j, (key, label) in enumerate((("original", "originals"), ("anonymized", "anonymized"),
                                          ("clear_trained", "trained on originals"))):
            if key not in b:
                continue
            acc = [b[key][a]["accuracy"] for a in attackers]
            err = np.array([[b[key][a]["accuracy"] - b[key][a]["ci"][0], b[key][a]["ci"][1] - b[key][a]["accuracy"]]
                            for a in attackers]).T
            ax.bar(xs + (j - 1) * 0.27, acc, 0.27, yerr=err, label=label, capsize=2)
        ax.axhline(b["chance"], color="k", ls=":", lw=1, label="chance")
        ax.set_xticks(xs, attackers)
        ax.set_ylim(0, 1)
        ax.set_title(f"{role}: {b['field']}", fontsize=9)
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
    return _save(fig, path)


def best_lambda(rows: list[dict[str, Any]], tolerance: float = 0.10) -> dict[str, Any] | None:
    """The sweep row whose best private attacker is lowest among rows whose utility accuracy stays within
    ``tolerance`` of the originals (rows without a utility label: the lowest private accuracy)."""
    ok = [r for r in rows if r.get("utility_drop") is None or r["utility_drop"] <= tolerance]
    return min(ok, key=lambda r: (r["private"], r["lambda"])) if ok else None


def write_sweep_report(out: Path, rows: list[dict[str, Any]], original: dict[str, Any], tolerance: float) -> Path:
    """``sweep.md`` (the table) and ``sweep.png`` (private and utility accuracy versus lambda)."""
    p = original["private"]
    u = original.get("utility")
    lines = ["# Lambda sweep", "",
             f"Private label `{p['field']}`: chance {_pct(p['chance'])} %, best attacker on originals "
             f"{_pct(p['best_original'])} %."]
    if u:
        lines.append(f"Utility label `{u['field']}`: chance {_pct(u['chance'])} %, best classifier on originals "
                     f"{_pct(u['best_original'])} %.")
    lines += ["", "| lambda | private (best attacker) % | private, attacker trained on originals % | utility (best "
                  "classifier) % | utility drop (points) | utility, classifier trained on originals % | PSNR dB | "
                  "SSIM | train s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        drop = "-" if r.get("utility_drop") is None else f"{100 * r['utility_drop']:.1f}"
        lines.append(f"| {r['lambda']:g} | {_pct(r['private'])} | {_pct(r.get('private_clear_trained'))} | "
                     f"{_pct(r.get('utility'))} | {drop} | {_pct(r.get('utility_clear_trained'))} | "
                     f"{r['psnr_db']:.2f} | {r['ssim']:.3f} | {r['train_seconds']:.0f} |")
    best = best_lambda(rows, tolerance)
    lines += ["", (f"Best lambda (lowest private accuracy with the utility within {100 * tolerance:.0f} points): "
                   f"{best['lambda']:g}." if best else
                   f"No lambda keeps the utility within {100 * tolerance:.0f} points."), "", "![sweep](sweep.png)", ""]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    lams = np.array([r["lambda"] for r in rows], dtype=float)
    ax.plot(lams, [r["private"] for r in rows], "o-", color="C3", label=f"private ({p['field']})")
    ax.axhline(p["chance"], color="C3", ls=":", lw=1, label="private chance")
    ax.axhline(p["best_original"], color="C3", ls="--", lw=0.8, label="private on originals")
    if u:
        ax.plot(lams, [r["utility"] for r in rows], "s-", color="C0", label=f"utility ({u['field']})")
        ax.axhline(u["best_original"], color="C0", ls="--", lw=0.8, label="utility on originals")
    positive = lams[lams > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)
    ax.set_xticks(lams, [f"{v:g}" for v in lams])
    ax.minorticks_off()
    ax.set_xlabel("lambda")
    ax.set_ylabel("best fresh attacker, test accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    _save(fig, out / "sweep.png")
    return atomic_write_text(out / "sweep.md", "\n".join(lines))
