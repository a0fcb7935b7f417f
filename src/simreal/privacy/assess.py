"""``simreal anonymize audit``: what an adversary can still learn after release, measured honestly.

For the private label and for a utility label (one the anonymizer never saw), fresh attackers of several
architectures (:mod:`simreal.privacy.attackers`) are trained from scratch on the training split of the
anonymized images and tested on the held-out split; the same attackers are trained and tested on the
original images, so each accuracy has its clear-data counterpart. Optionally attackers trained on the
original images are tested on the anonymized ones (``clear_trained``), and attackers trained on shuffled
private labels show where chance lies for these very attackers (``shuffled_control``). Accuracies carry
Wilson confidence intervals (test-set sampling); the privacy figure is the *best* attacker. PSNR and SSIM
compare each anonymized image with its original.

Labels are read from the original dataset's records (matched by record id), so the anonymized dataset
may omit the private field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.config import load_config
from simreal.datasets import Dataset
from simreal.errors import ConfigError, DatasetError
from simreal.metrics.quality import quality_summary
from simreal.privacy.attackers import FitResult, accuracy, fit_attacker, wilson_interval
from simreal.privacy.config import AuditConfig
from simreal.privacy.data import Labels, has_split, image_channels, load_images, read_labels, split_mask
from simreal.runtime.device import resolve_device
from simreal.runtime.io import atomic_write_json, atomic_write_text
from simreal.runtime.progress import close_logger, folder_logger, make_progress


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit` returns: the report folder, ``report.md`` and the ``audit.json`` content."""

    out: Path
    report: Path
    summary: dict[str, Any]


@dataclass
class OriginalData:
    """The original dataset as the audit sees it: images, labels, split."""

    ds: Dataset
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    labels: dict[str, Labels]  # role ("private", "utility") -> labels
    train: np.ndarray  # indices
    test: np.ndarray
    split_source: str


def _split(ds: Dataset, private: Labels, cfg: AuditConfig) -> tuple[np.ndarray, np.ndarray, str]:
    if has_split(ds, cfg.split_field):
        test = split_mask(ds, cfg.split_field, "test")
        if test.any() and not test.all():
            return np.flatnonzero(~test), np.flatnonzero(test), f"record field {cfg.split_field!r} ('test' held out)"
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(ds))
    tr, te = train_test_split(idx, test_size=cfg.test_fraction, random_state=cfg.seeds[0], stratify=private.index)
    return np.sort(tr), np.sort(te), f"stratified random split ({cfg.test_fraction:g} held out, seed {cfg.seeds[0]})"


def load_original(original: str | Path, private_label: str, utility_label: str | None, cfg: AuditConfig,
                  progress: bool = False) -> OriginalData:
    """Open the original dataset, read both labels and fix the split (checked: 2+ classes on each side)."""
    ds = Dataset.open(original)
    labels = {"private": read_labels(ds, private_label, "--private-label")}
    if utility_label:
        labels["utility"] = read_labels(ds, utility_label, "--utility-label")
    train, test, source = _split(ds, labels["private"], cfg)
    for role, lab in labels.items():
        for name, part in (("training", train), ("test", test)):
            if len(np.unique(lab.index[part])) < 2:
                raise DatasetError(f"{ds.root}: the {name} split holds fewer than 2 values of {lab.field!r} ({role})")
    images = load_images(ds, image_channels(ds, None), progress, "load originals")
    return OriginalData(ds, images, labels, train, test, source)


def anonymized_positions(original: Dataset, anonymized: Dataset) -> list[int]:
    """For each original record, the index of its anonymized counterpart (matched by record id);
    DatasetError naming the first original record without one."""
    pos = {int(r["id"]): i for i, r in enumerate(anonymized.images)}
    missing = [r for r in original.images if int(r["id"]) not in pos]
    if missing:
        raise DatasetError(f"{anonymized.root}: {len(missing)} image record(s) of {original.root} have no "
                           f"anonymized counterpart (e.g. id {missing[0]['id']}, {missing[0]['file_name']}); "
                           "records are matched by id")
    return [pos[int(r["id"])] for r in original.images]


def match_anonymized(orig: OriginalData, anonymized: str | Path, progress: bool = False) -> np.ndarray:
    """The anonymized images in the original's record order; every original record must have its
    anonymized counterpart, of the same size."""
    ds = Dataset.open(anonymized)
    order = anonymized_positions(orig.ds, ds)
    images = load_images(ds, orig.images.shape[1], progress, "load anonymized")
    if images.shape[2:] != orig.images.shape[2:]:
        raise DatasetError(f"{ds.root}: images are {images.shape[3]}x{images.shape[2]}, the originals "
                           f"{orig.images.shape[3]}x{orig.images.shape[2]}")
    return images[order]


@dataclass
class Auditor:
    """Trains and tests the attackers; the original-data attackers are trained once and reused (a λ sweep
    audits many anonymized versions of one dataset)."""

    orig: OriginalData
    cfg: AuditConfig
    device: torch.device
    progress: bool = True
    log: Any = None  # a logging.Logger (each attacker fit is logged) or None
    _fits: dict[tuple[str, str, int], FitResult] = field(default_factory=dict)
    _original: dict[str, Any] | None = None

    def _jobs(self, with_control: bool) -> int:
        per = len(self.cfg.attackers) * len(self.cfg.seeds)
        return per * len(self.orig.labels) + (per if with_control else 0)

    def _row(self, accs: list[float], fits: list[FitResult], n: int) -> dict[str, Any]:
        acc = float(np.mean(accs))
        lo, hi = wilson_interval(acc * n, n, self.cfg.confidence)
        return {"accuracy": acc, "ci": [lo, hi], "seeds": accs, "seed_std": float(np.std(accs)),
                "epochs": [f.epochs for f in fits], "best_epochs": [f.best_epoch for f in fits],
                "converged": all(f.converged for f in fits)}

    def _train_and_test(self, role: str, what: str, x: np.ndarray, y: np.ndarray, k: int, prog: Any, task: Any,
                        keep: bool = False) -> dict[str, Any]:
        """Every attacker (and seed) trained on ``x[train]`` for labels ``y`` (``k`` classes), tested on
        ``x[test]``; ``keep`` keeps the fitted attackers (for the clear-trained test)."""
        o, cfg = self.orig, self.cfg
        rows = {}
        for arch in cfg.attackers:
            accs, fits = [], []
            for seed in cfg.seeds:
                fit = fit_attacker(arch, x[o.train], y[o.train], k, cfg, seed, self.device)
                accs.append(accuracy(fit, x[o.test], y[o.test], self.device)[0])
                fits.append(fit)
                if self.log is not None:
                    self.log.info("%s label, %s images, %s seed %d: %d epochs (best %d, val %.3f%s), test "
                                  "accuracy %.4f", role, what, arch, seed, fit.epochs, fit.best_epoch, fit.val_accuracy,
                                  "" if fit.converged else ", epoch cap", accs[-1])
                if keep:
                    self._fits[(role, arch, seed)] = fit
                prog.advance(task)
            rows[arch] = self._row(accs, fits, len(o.test))
        return rows

    def _label_block(self, lab: Labels) -> dict[str, Any]:
        test_counts = lab.counts(self.orig.test)
        return {"field": lab.field, "classes": lab.num_classes,
                "chance": float(test_counts.max() / test_counts.sum()), "uniform_chance": 1.0 / lab.num_classes}

    def original_results(self) -> dict[str, Any]:
        """Attackers trained and tested on the original images (computed once)."""
        if self._original is None:
            o = self.orig
            res: dict[str, Any] = {}
            with make_progress("fit", disable=not self.progress) as prog:
                task = prog.add_task("attackers on originals", total=self._jobs(self.cfg.shuffled_control))
                for role, lab in o.labels.items():
                    res[role] = {**self._label_block(lab),
                                 "original": self._train_and_test(role, "original", o.images, lab.index,
                                                                  lab.num_classes, prog, task, keep=True)}
                if self.cfg.shuffled_control:
                    lab = o.labels["private"]
                    y = lab.index.copy()
                    rng = np.random.default_rng(self.cfg.seeds[0] + 1000)
                    y[o.train] = y[o.train][rng.permutation(len(o.train))]
                    res["private"]["shuffled_control"] = self._train_and_test("private", "shuffled-label",
                                                                              o.images, y, lab.num_classes, prog, task)
            self._original = res
        return json.loads(json.dumps(self._original))

    def evaluate(self, anonymized: np.ndarray) -> dict[str, Any]:
        """Every figure of the audit for one anonymized version of the original images."""
        o, cfg = self.orig, self.cfg
        res = self.original_results()
        with make_progress("fit", disable=not self.progress) as prog:
            task = prog.add_task("attackers on anonymized", total=self._jobs(False))
            for role, lab in o.labels.items():
                block = res[role]
                block["anonymized"] = self._train_and_test(role, "anonymized", anonymized, lab.index,
                                                           lab.num_classes, prog, task)
                if cfg.clear_trained:
                    rows = {}
                    for arch in cfg.attackers:
                        fits = [self._fits[(role, arch, s)] for s in cfg.seeds]
                        accs = [accuracy(f, anonymized[o.test], lab.index[o.test], self.device)[0] for f in fits]
                        rows[arch] = self._row(accs, fits, len(o.test))
                    block["clear_trained"] = rows
                for key in ("original", "anonymized", "clear_trained", "shuffled_control"):
                    if key in block:
                        best = max(block[key], key=lambda a, b=block[key]: b[a]["accuracy"])
                        block.setdefault("best", {})[key] = {"attacker": best, **block[key][best]}
                b = block["best"]
                span = b["original"]["accuracy"] - block["chance"]
                # (acc - chance) / (acc on originals - chance): the share of the above-chance accuracy left
                # (the private label's leakage; the utility label's retained usefulness)
                block["normalized"] = (None if span <= 0 else (b["anonymized"]["accuracy"] - block["chance"]) / span)
        res["quality"] = {"all": quality_summary(anonymized, o.images),
                          "test": quality_summary(anonymized[o.test], o.images[o.test])}
        res["split"] = {"train": int(len(o.train)), "test": int(len(o.test)), "source": o.split_source}
        res["config"] = cfg.model_dump(mode="json")
        return res


def make_auditor(original: str | Path, private_label: str, utility_label: str | None,
                 config: AuditConfig | str | Path | dict[str, Any] | None = None,
                 overrides: dict[str, Any] | None = None, device: str | None = None,
                 progress: bool = True) -> Auditor:
    """An :class:`Auditor` over the original dataset (config validated, device resolved, data checked)."""
    ov = dict(overrides or {})
    if device is not None:
        ov["device"] = device
    cfg = load_config(AuditConfig, config, ov)
    if not private_label:
        raise ConfigError("--private-label: the private label field is required")
    dev = resolve_device(cfg.device, "device")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return Auditor(load_original(original, private_label, utility_label, cfg, progress), cfg, dev, progress)


def audit(original: str | Path, anonymized: str | Path, out: str | Path | None = None, *, private_label: str,
          utility_label: str | None = None, config: AuditConfig | str | Path | dict[str, Any] | None = None,
          overrides: dict[str, Any] | None = None, device: str | None = None, progress: bool = True) -> AuditResult:
    """Audit ``anonymized`` against ``original``; writes ``audit.json``, ``report.md`` and ``audit.png`` to
    ``out`` (default ``<anonymized>/audit``)."""
    from simreal.privacy.report import write_audit_report

    out = Path(out) if out is not None else Path(anonymized) / "audit"
    anonymized_positions(Dataset.open(original), Dataset.open(anonymized))  # bad input found before any work
    auditor = make_auditor(original, private_label, utility_label, config, overrides, device, progress)
    anon = match_anonymized(auditor.orig, anonymized, progress)
    auditor.log = folder_logger(out, "anonymize-audit")
    auditor.log.info("audit of %s against %s: %d training / %d test images (%s), attackers %s, seeds %s",
                     anonymized, original, len(auditor.orig.train), len(auditor.orig.test),
                     auditor.orig.split_source, auditor.cfg.attackers, auditor.cfg.seeds)
    try:
        res = auditor.evaluate(anon)
        res["datasets"] = {"original": str(original), "anonymized": str(anonymized)}
        atomic_write_json(out / "audit.json", res)
        report = write_audit_report(out, res)
        atomic_write_text(out / "summary.txt", summary_line(res) + "\n")
        auditor.log.info("%s", summary_line(res))
    finally:
        close_logger(auditor.log)
    return AuditResult(out, report, res)


def summary_line(res: dict[str, Any]) -> str:
    """One line: best attacker on the private label (and the utility label) against chance and originals."""
    p = res["private"]
    b = p["best"]
    parts = [f"private {p['field']!r}: best attacker {b['anonymized']['accuracy']:.1%} "
             f"({b['anonymized']['attacker']}) on anonymized vs {b['original']['accuracy']:.1%} on originals, "
             f"chance {p['chance']:.1%}"]
    if "utility" in res:
        u = res["utility"]["best"]
        parts.append(f"utility {res['utility']['field']!r}: {u['anonymized']['accuracy']:.1%} vs "
                     f"{u['original']['accuracy']:.1%}")
    q = res["quality"]["all"]
    parts.append(f"PSNR {q['psnr_db']:.1f} dB, SSIM {q['ssim']:.3f}")
    return "; ".join(parts)
