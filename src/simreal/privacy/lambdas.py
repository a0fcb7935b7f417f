"""``simreal anonymize sweep``: train, apply and audit one anonymizer per lambda, then the table and the
plot of private and utility accuracy versus lambda (the paper's trade-off figure) with the chance line.

Layout: ``OUT/lambda_<v>/run`` (the run), ``OUT/lambda_<v>/data`` (the anonymized dataset, private field
kept out), ``OUT/lambda_<v>/audit.json`` and ``report.md``; ``OUT/original.json`` (attackers on the
originals, trained once per audit config), ``OUT/sweep.json``, ``OUT/sweep.md``, ``OUT/sweep.png``, ``OUT/log.txt``.
Rerunning the command resumes: finished runs and datasets are kept (a run with another config is refused),
audits are kept while the audit config is the same.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simreal.config import load_config
from simreal.errors import ConfigError
from simreal.privacy.assess import Auditor, make_auditor, match_anonymized, summary_line
from simreal.privacy.config import AnonymizeConfig
from simreal.privacy.fit import train
from simreal.privacy.report import best_lambda, write_audit_report, write_sweep_report
from simreal.privacy.write import apply
from simreal.runtime.io import atomic_write_json
from simreal.runtime.progress import close_logger, folder_logger


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` returns: the folder, one row per lambda and the best lambda's row."""

    out: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    report: Path


def _row(lam: float, res: dict[str, Any], seconds: float) -> dict[str, Any]:
    p = res["private"]["best"]
    row = {"lambda": lam, "private": p["anonymized"]["accuracy"], "private_attacker": p["anonymized"]["attacker"],
           "private_clear_trained": p.get("clear_trained", {}).get("accuracy"),
           "psnr_db": res["quality"]["all"]["psnr_db"], "ssim": res["quality"]["all"]["ssim"],
           "train_seconds": seconds}
    if "utility" in res:
        u = res["utility"]["best"]
        row.update({"utility": u["anonymized"]["accuracy"],
                    "utility_drop": u["original"]["accuracy"] - u["anonymized"]["accuracy"],
                    "utility_clear_trained": u.get("clear_trained", {}).get("accuracy")})
    return row


def sweep(data: str | Path, out: str | Path, lambdas: list[float], *, private_label: str,
          utility_label: str | None = None, config: AnonymizeConfig | str | Path | dict[str, Any] | None = None,
          audit_config: Any = None, overrides: dict[str, Any] | None = None,
          audit_overrides: dict[str, Any] | None = None, device: str | None = None, tolerance: float = 0.10,
          progress: bool = True) -> SweepResult:
    """One anonymizer per lambda on ``data``, each applied and audited; the best lambda keeps the utility
    within ``tolerance`` of the originals with the lowest private accuracy."""
    if not lambdas:
        raise ConfigError("--lambdas: give at least one value")
    bad = [v for v in lambdas if v < 0]
    if bad:
        raise ConfigError(f"--lambdas: {bad[0]:g} is negative (lambda must be >= 0)")
    out = Path(out)
    base = load_config(AnonymizeConfig, config, overrides)
    auditor = make_auditor(data, private_label, utility_label, audit_config, audit_overrides, device, progress)
    out.mkdir(parents=True, exist_ok=True)
    log = folder_logger(out, "anonymize-sweep")
    auditor.log = log
    try:
        return _sweep(data, out, lambdas, private_label, base, auditor, device, tolerance, progress, log)
    finally:
        close_logger(log)


def _cached_audit(path: Path, audit_cfg: dict[str, Any]) -> dict[str, Any] | None:
    """An audit.json written with the same audit config (else None: it must be redone)."""
    if not path.is_file():
        return None
    res = json.loads(path.read_text(encoding="utf-8"))
    return res if res.get("config") == audit_cfg else None


def _sweep(data: str | Path, out: Path, lambdas: list[float], private_label: str, base: AnonymizeConfig,
           auditor: Auditor, device: str | None, tolerance: float, progress: bool, log: Any) -> SweepResult:
    log.info("sweep of lambda %s on %s (private label %r)", lambdas, data, private_label)
    audit_cfg = auditor.cfg.model_dump(mode="json")
    lams = sorted(set(float(v) for v in lambdas))
    # the attackers on the originals are trained once per audit config; when every lambda is audited already,
    # their recorded results are enough (new audits need the fitted attackers themselves)
    original = None
    cached = _cached_audit(out / "original.json", audit_cfg)
    if cached is not None and all(_cached_audit(out / f"lambda_{lam:g}" / "audit.json", audit_cfg) for lam in lams):
        original = cached["results"]
    if original is None:
        original = auditor.original_results()
        atomic_write_json(out / "original.json", {"config": audit_cfg, "results": original})
    summary = {role: {"field": b["field"], "chance": b["chance"],
                      "best_original": max(r["accuracy"] for r in b["original"].values())}
               for role, b in original.items()}
    rows = []
    for lam in lams:
        folder = out / f"lambda_{lam:g}"
        run, anon = folder / "run", folder / "data"
        cfg = base.model_copy(deep=True)
        cfg.loss.lam = lam
        t0 = time.perf_counter()
        timing = folder / "train_seconds.json"
        # always through train(): a finished run with the same config returns at once, another config is refused
        train(data, run, cfg, private_label=private_label, device=device, progress=progress)
        if not timing.is_file():
            atomic_write_json(timing, {"seconds": time.perf_counter() - t0})
        seconds = float(json.loads(timing.read_text())["seconds"])
        if not (anon / "dataset.json").is_file():
            apply(run, data, anon, device=device, progress=progress, command="simreal anonymize sweep")
        res = _cached_audit(folder / "audit.json", audit_cfg)
        if res is None:
            res = auditor.evaluate(match_anonymized(auditor.orig, anon, progress))
            res["datasets"] = {"original": str(data), "anonymized": str(anon)}
            write_audit_report(folder, res)
            atomic_write_json(folder / "audit.json", res)
        rows.append(_row(lam, res, seconds))
        log.info("lambda %g: %s", lam, summary_line(res))
    best = best_lambda(rows, tolerance)
    atomic_write_json(out / "sweep.json", {"rows": rows, "best": best, "original": summary, "tolerance": tolerance})
    report = write_sweep_report(out, rows, summary, tolerance)
    return SweepResult(out, rows, best, report)
