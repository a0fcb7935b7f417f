"""Anonymization of the font-as-identity digits: a lambda sweep with the audit, against the targets of issue
12 (at the best lambda: the best fresh attacker on the font within 10 points of chance, a fresh digit
classifier within 10 points of its accuracy on the original images), with PSNR/SSIM and wall time.

Run: ``.venv/bin/python benchmarks/anonymize_digits.py [--work DIR] [--lambdas 0,1,2.5,5]``. Work files (the
dataset, runs, anonymized datasets, audits) go to ``--work`` (default ``$SIMREAL_BENCH_DIR/anonymize`` or
``~/.cache/simreal/bench/anonymize``); a rerun reuses what is finished.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ANON = {"train": {"threads": 1}}  # anon.yaml of the benchmark: the defaults; lambda comes from the sweep
AUDIT = {"attackers": ["logistic", "mlp", "smallcnn"], "width": 16, "max_epochs": 40, "patience": 6,
         "threads": 1}


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def blur_baseline(data: Path, out: Path, target_psnr: float) -> None:
    """Gaussian blur with the sigma whose mean PSNR is closest to ``target_psnr`` (bisection), written as an
    anonymized dataset (font field removed) and audited with the same attackers."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    import simreal
    from simreal.datasets import Dataset, DatasetWriter, encode_image
    from simreal.metrics.quality import quality_summary
    from simreal.privacy.data import drop_field, load_images
    from simreal.runtime.io import atomic_dir

    ds = Dataset.open(data)
    x = load_images(ds, 1)

    def blur(sigma: float) -> np.ndarray:
        return np.stack([gaussian_filter(img, (0, sigma, sigma), mode="constant") for img in x])

    lo, hi = 0.2, 6.0
    for _ in range(12):  # PSNR falls as sigma grows
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if quality_summary(blur(mid)[:300], x[:300])["psnr_db"] > target_psnr else (lo, mid)
    sigma = (lo + hi) / 2
    folder = out / f"blur_{sigma:.2f}"
    if not (folder / "data" / "dataset.json").is_file():
        y = blur(sigma)
        with atomic_dir(folder / "data") as tmp:
            w = DatasetWriter(tmp, f"{ds.name}-blur", "anonymized", ds.categories,
                              provenance={"command": "benchmarks/anonymize_digits.py --blur-baseline",
                                          "gaussian_sigma": sigma, "parents": [{"path": str(data)}]})
            for i, r in enumerate(ds.images):
                w.write_file(r["file_name"], encode_image((np.clip(y[i, 0], 0, 1) * 255).round().astype(np.uint8)))
            w.finalize([drop_field(r, "font") for r in ds.images], [])
    if not (folder / "audit" / "audit.json").is_file():
        simreal.anonymize.audit(data, folder / "data", folder / "audit", private_label="font", utility_label="digit",
                                config={**AUDIT, "clear_trained": False}, device="cpu", progress=False)
    a = json.loads((folder / "audit" / "audit.json").read_text())
    p, u, q = a["private"]["best"]["anonymized"], a["utility"]["best"]["anonymized"], a["quality"]["all"]
    print(f"baseline Gaussian blur sigma {sigma:.2f} px (PSNR matched to the best lambda): font "
          f"{100 * p['accuracy']:.1f} % ({p['attacker']}), digit {100 * u['accuracy']:.1f} % ({u['attacker']}), "
          f"PSNR {q['psnr_db']:.2f} dB, SSIM {q['ssim']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_work = Path(os.environ.get("SIMREAL_BENCH_DIR", Path.home() / ".cache" / "simreal" / "bench"))
    ap.add_argument("--work", type=Path, default=default_work / "anonymize")
    ap.add_argument("--lambdas", default="0,1,2.5,5")
    ap.add_argument("--families", type=int, default=12)
    ap.add_argument("--per-cell", type=int, default=30)
    ap.add_argument("--size", type=int, default=20)
    ap.add_argument("--steps", type=int, default=600, help="phase-3 steps (train.steps)")
    ap.add_argument("--blur-baseline", action="store_true",
                    help="also audit a Gaussian blur whose PSNR matches the best lambda's (a classic baseline)")
    ap.add_argument("--intertwined", default=None, metavar="FONT",
                    help="also run the intertwined mode toward this font family, with substitution "
                         "(e.g. 'DejaVu Sans')")
    ap.add_argument("--intertwined-lambda", type=float, default=0.5,
                    help="lambda of the intertwined run (substitution already replaces every image)")
    args = ap.parse_args()

    import simreal
    from simreal.privacy.fontdigits import describe_families, find_font_families

    t0 = time.perf_counter()
    load0 = _load()
    fams = find_font_families(args.families)
    print(describe_families(fams, args.families))
    data = args.work / f"fontdigits_f{len(fams)}_n{args.per_cell}_s{args.size}"
    if not (data / "dataset.json").is_file():
        simreal.anonymize.make_digits(data, per_cell=args.per_cell, families=args.families, size=args.size,
                                      progress=False, command="benchmarks/anonymize_digits.py")
    cfg = json.loads(json.dumps(ANON))
    cfg["train"]["steps"] = args.steps
    lambdas = [float(v) for v in args.lambdas.split(",")]
    out = args.work / f"sweep_{data.name}_steps{args.steps}"
    res = simreal.anonymize.sweep(data, out, lambdas, private_label="font", utility_label="digit", config=cfg,
                                  audit_config=AUDIT, device="cpu", progress=False)
    original = json.loads((out / "original.json").read_text())["results"]
    wall = time.perf_counter() - t0

    n = len(json.loads((data / "annotations.json").read_text())["images"])
    print(f"data: {n} images {args.size}x{args.size}, {len(fams)} font families x 10 digits; "
          f"split field 'split' (25 % test)")
    print("\nattackers on the ORIGINAL images (test accuracy %, 95 % Wilson interval):")
    for role in ("private", "utility"):
        b = original[role]
        rows = ", ".join(f"{a} {100 * r['accuracy']:.1f} [{100 * r['ci'][0]:.1f}, {100 * r['ci'][1]:.1f}]"
                         for a, r in b["original"].items())
        print(f"  {role} '{b['field']}' (chance {100 * b['chance']:.1f}): {rows}")
    print("\nsweep (best fresh attacker per label on the anonymized images):")
    print("| lambda | font (private) % | font, attacker trained on originals % | digit (utility) % | digit drop "
          "(points) | digit, classifier trained on originals % | PSNR dB | SSIM | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in res.rows:
        print(f"| {r['lambda']:g} | {100 * r['private']:.1f} ({r['private_attacker']}) | "
              f"{100 * (r['private_clear_trained'] or 0):.1f} | {100 * r['utility']:.1f} | "
              f"{100 * r['utility_drop']:.1f} | {100 * (r['utility_clear_trained'] or 0):.1f} | {r['psnr_db']:.2f} | "
              f"{r['ssim']:.3f} | {r['train_seconds']:.0f} |")
    chance = original["private"]["chance"]
    best_u = max(v["accuracy"] for v in original["utility"]["original"].values())
    if res.best is None:
        print("\nno lambda keeps the digit accuracy within 10 points of the originals")
    else:
        b = res.best
        ok_p = b["private"] - chance <= 0.10
        ok_u = b["utility_drop"] <= 0.10
        print(f"\nbest lambda {b['lambda']:g}: font {100 * b['private']:.1f} % vs chance {100 * chance:.1f} % "
              f"({100 * (b['private'] - chance):+.1f} points; target <= +10: {'MET' if ok_p else 'NOT MET'}); "
              f"digit {100 * b['utility']:.1f} % vs {100 * best_u:.1f} % on originals "
              f"({-100 * b['utility_drop']:+.1f} points; target >= -10: {'MET' if ok_u else 'NOT MET'}); "
              f"PSNR {b['psnr_db']:.2f} dB, SSIM {b['ssim']:.3f}")
    print(f"report: {res.report}")
    if args.blur_baseline and res.best is not None:
        blur_baseline(data, out, res.best["psnr_db"])
    if args.intertwined:
        lam = args.intertwined_lambda
        folder = out / f"intertwined_{lam:g}"
        icfg = json.loads(json.dumps(cfg))
        icfg["loss"] = {"lam": lam}
        icfg["intertwined"] = {"enabled": True, "identity": args.intertwined, "substitute": True}
        t1 = time.perf_counter()
        simreal.anonymize(data, folder / "run", icfg, private_label="font", device="cpu", progress=False)
        if not (folder / "data" / "dataset.json").is_file():
            simreal.anonymize.apply(folder / "run", data, folder / "data", device="cpu", progress=False)
        if not (folder / "audit" / "audit.json").is_file():
            simreal.anonymize.audit(data, folder / "data", folder / "audit", private_label="font",
                                    utility_label="digit", config={**AUDIT, "clear_trained": False},
                                    device="cpu", progress=False)
        a = json.loads((folder / "audit" / "audit.json").read_text())
        p, u, q = a["private"]["best"]["anonymized"], a["utility"]["best"]["anonymized"], a["quality"]["all"]
        print(f"intertwined toward {args.intertwined!r} with substitution (lambda {lam:g}): font "
              f"{100 * p['accuracy']:.1f} % ({p['attacker']}), digit {100 * u['accuracy']:.1f} % ({u['attacker']}), "
              f"PSNR {q['psnr_db']:.2f} dB, SSIM {q['ssim']:.3f}; {time.perf_counter() - t1:.0f} s")
    print(f"total wall time {wall:.0f} s; load average before {load0}, after {_load()} "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
