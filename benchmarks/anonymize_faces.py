"""Anonymization of rendered faces: identity private, expression kept (issue 12's intertwined mode on faces).

Data: ``simreal faces render`` with ``configs/faces/render_source.yaml`` (24 anny identities aged 6-60, 7
expressions, varied light and camera; rendered once into ``$SIMREAL_CACHE_DIR/faces_bench/render_source``
and shared with ``benchmarks/faces_adapt.py``), the aligned 112x112 chips resized to ``--size`` (default
32) with the fields ``identity`` (the private label, the renderer's ``track_id``), ``expression`` (the
utility label) and ``split`` (every 4th image of each identity is test, so the audit tests on faces the
anonymizer never saw).

Releases, each audited by the same fresh attackers (logistic, mlp, smallcnn; identity chance 1/24,
expression chance 1/7):

- the plain anonymizer (eq. 12) at ``--lam``;
- the intertwined mode toward one identity (``--identity``, default the first) at ``--intertwined-lambda``,
  without and with nearest-neighbour substitution (the same run, applied twice);
- a Gaussian blur with the PSNR of the plain anonymizer (a classic baseline), or the strongest blur tried (σ 8 px)
  when no blur loses that much (a blurred face tends to its mean colour, whose PSNR is about 20 dB).

Run: ``.venv/bin/python benchmarks/anonymize_faces.py [--count 600] [--size 32]``. Work files go to
``--work`` (default ``$SIMREAL_BENCH_DIR/anonymize_faces`` or ``~/.cache/simreal/bench/anonymize_faces``); a
rerun reuses what is finished.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AUDIT = {"attackers": ["logistic", "mlp", "smallcnn"], "width": 16, "max_epochs": 60, "patience": 8,
         "threads": 1}


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def render_source(count: int, workers: int) -> Path:
    """The rendered chips (resumable; frame i is a pure function of (seed, i))."""
    from simreal.config import load_config
    from simreal.faces.render import FaceRenderConfig, render_faces

    base = Path(os.environ.get("SIMREAL_CACHE_DIR", Path.home() / ".cache" / "simreal")) / "faces_bench"
    out = base / "render_source" if count == 600 else base / f"render_source_{count}"
    s = render_faces(load_config(FaceRenderConfig, ROOT / "configs/faces/render_source.yaml", {"count": count}),
                     out, workers, quiet=True)
    print(f"rendered faces: {s.chips} chips / {s.frames} frames ({s.missed} without a detected face), "
          f"{s.seconds:.0f} s this call")
    return out


def write_faces(src: Path, out: Path, size: int) -> None:
    """The chips at ``size`` x ``size`` with ``identity``, ``expression`` and ``split`` fields."""
    import numpy as np
    from PIL import Image

    from simreal.datasets import Dataset, DatasetWriter, encode_image
    from simreal.runtime.io import atomic_dir

    if (out / "dataset.json").is_file():
        return
    ds = Dataset.open(src)
    seen: dict[str, int] = {}
    with atomic_dir(out) as tmp:
        w = DatasetWriter(tmp, out.name, "synthetic", ds.categories, provenance={
            "command": "benchmarks/anonymize_faces.py", "parents": [{"path": str(src)}], "size": size})
        records = []
        for k, r in enumerate(ds.images):
            img = Image.fromarray(ds.load_image(r)).resize((size, size), Image.Resampling.LANCZOS)
            ident = str(r["track_id"])
            n = seen[ident] = seen.get(ident, -1) + 1
            name = w.write_image(f"{k:06d}.png", encode_image(np.asarray(img)), durable=False)
            records.append({"id": k + 1, "file_name": name, "width": size, "height": size, "domain": "synthetic",
                            "label": r["label"], "identity": ident, "expression": r["params"]["label"],
                            "split": "test" if n % 4 == 3 else "train"})
        w.finalize(records, [], extra_info={"fields": {
            "identity": "private label (the rendered person)", "expression": "utility label",
            "split": "every 4th image of each identity is test"}})


def audited(data: Path, folder: Path, audit_cfg: dict[str, Any]) -> dict[str, Any]:
    import simreal

    if not (folder / "audit" / "audit.json").is_file():
        simreal.anonymize.audit(data, folder / "data", folder / "audit", private_label="identity",
                                utility_label="expression", config=audit_cfg, device="cpu", progress=False)
    return json.loads((folder / "audit" / "audit.json").read_text())


def blur_release(data: Path, folder: Path, target_psnr: float) -> float:
    """Gaussian blur whose mean PSNR is closest to ``target_psnr`` (bisection), identity removed."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from simreal.datasets import Dataset, DatasetWriter, encode_image
    from simreal.metrics.quality import quality_summary
    from simreal.privacy.data import drop_field, load_images
    from simreal.runtime.io import atomic_dir

    ds = Dataset.open(data)
    x = load_images(ds, 3)

    def blur(sigma: float) -> np.ndarray:
        return np.stack([gaussian_filter(img, (0, sigma, sigma), mode="nearest") for img in x])

    lo, hi = 0.2, 8.0
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if quality_summary(blur(mid), x)["psnr_db"] > target_psnr else (lo, mid)
    sigma = (lo + hi) / 2
    if not (folder / "data" / "dataset.json").is_file():
        y = blur(sigma)
        with atomic_dir(folder / "data") as tmp:
            w = DatasetWriter(tmp, f"{ds.name}-blur", "anonymized", ds.categories,
                              provenance={"command": "benchmarks/anonymize_faces.py", "gaussian_sigma": sigma,
                                          "parents": [{"path": str(data)}]})
            for i, r in enumerate(ds.images):
                arr = (np.clip(y[i].transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)
                w.write_image(r["file_name"], encode_image(arr), durable=False)
            w.finalize([drop_field(r, "identity") for r in ds.images], [])
    return sigma


def row(name: str, a: dict[str, Any]) -> str:
    """One table row: the best fresh attackers on a release, and its image quality."""
    p, u, q = a["private"]["best"]["anonymized"], a["utility"]["best"]["anonymized"], a["quality"]["all"]
    clear = a["private"]["best"].get("clear_trained")
    clear_s = f"{100 * clear['accuracy']:.1f}" if clear is not None else "—"
    return (f"| {name} | {100 * p['accuracy']:.1f} [{100 * p['ci'][0]:.1f}, {100 * p['ci'][1]:.1f}] "
            f"({p['attacker']}) | {clear_s} | {100 * u['accuracy']:.1f} [{100 * u['ci'][0]:.1f}, "
            f"{100 * u['ci'][1]:.1f}] ({u['attacker']}) | {q['psnr_db']:.2f} | {q['ssim']:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_work = Path(os.environ.get("SIMREAL_BENCH_DIR", Path.home() / ".cache" / "simreal" / "bench"))
    ap.add_argument("--work", type=Path, default=default_work / "anonymize_faces")
    ap.add_argument("--count", type=int, default=600, help="rendered faces (24 identities)")
    ap.add_argument("--size", type=int, default=32, help="chip side after resizing (a multiple of 4)")
    ap.add_argument("--lam", type=float, default=5.0, help="lambda of the plain anonymizer")
    ap.add_argument("--identity", default="id0", help="the chosen identity of the intertwined mode")
    ap.add_argument("--intertwined-lambda", type=float, default=0.5)
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--steps", type=int, default=600, help="phase-3 steps (train.steps)")
    ap.add_argument("--width", type=int, default=24, help="autoencoder width (model.width)")
    ap.add_argument("--workers", type=int, default=2, help="render workers")
    args = ap.parse_args()

    import simreal

    t0, load0 = time.perf_counter(), _load()
    src = render_source(args.count, args.workers)
    data = args.work / f"faces_n{args.count}_s{args.size}"
    write_faces(src, data, args.size)
    base_cfg: dict[str, Any] = {
        "model": {"width": args.width, "code_channels": 16},
        "train": {"threads": 1, "pretrain_steps": args.pretrain_steps, "steps": args.steps}}
    times: dict[str, float] = {}

    def run(name: str, lam: float, intertwined: dict[str, Any] | None) -> Path:
        folder = args.work / f"{name}_w{args.width}_steps{args.steps}"
        cfg = json.loads(json.dumps(base_cfg))
        cfg["loss"] = {"lam": lam}
        if intertwined:
            cfg["intertwined"] = intertwined
        t = time.perf_counter()
        simreal.anonymize(data, folder / "run", cfg, private_label="identity", device="cpu", progress=False)
        times[name] = time.perf_counter() - t
        return folder

    results: list[tuple[str, dict[str, Any]]] = []
    plain = run(f"plain_lam{args.lam:g}", args.lam, None)
    if not (plain / "data" / "dataset.json").is_file():
        simreal.anonymize.apply(plain / "run", data, plain / "data", device="cpu", progress=False)
    a_plain = audited(data, plain, {**AUDIT, "clear_trained": True})
    original = a_plain
    inter = run(f"intertwined_{args.identity}_lam{args.intertwined_lambda:g}", args.intertwined_lambda,
                {"enabled": True, "identity": args.identity, "substitute": False})
    for sub in (False, True):
        folder = inter / ("substituted" if sub else "plain")
        if not (folder / "data" / "dataset.json").is_file():
            simreal.anonymize.apply(inter / "run", data, folder / "data", substitute_identity=sub, device="cpu",
                                    progress=False)
        results.append((f"intertwined toward {args.identity}, λ = {args.intertwined_lambda:g}"
                        + (", substitution" if sub else ""), audited(data, folder, {**AUDIT, "clear_trained": True})))
    blur_dir = args.work / f"blur_psnr_of_plain_lam{args.lam:g}"
    sigma = blur_release(data, blur_dir, a_plain["quality"]["all"]["psnr_db"])
    a_blur = audited(data, blur_dir, {**AUDIT, "clear_trained": True})
    wall = time.perf_counter() - t0

    n = len(json.loads((data / "annotations.json").read_text())["images"])
    pch, uch = original["private"]["chance"], original["utility"]["chance"]
    print(f"\ndata: {n} rendered faces at {args.size}x{args.size} RGB, 24 identities x 7 expressions, "
          "every 4th image of each identity held out (test)")
    print("attackers on the ORIGINAL images (test accuracy %, 95 % Wilson interval):")
    for role in ("private", "utility"):
        b = original[role]
        rows = ", ".join(f"{k} {100 * r['accuracy']:.1f} [{100 * r['ci'][0]:.1f}, {100 * r['ci'][1]:.1f}]"
                         for k, r in b["original"].items())
        print(f"  {role} '{b['field']}' (chance {100 * b['chance']:.1f}): {rows}")
    print("\n| release | identity, best fresh attacker % [95 % CI] | identity, best attacker trained on originals % "
          "| expression, best fresh classifier % [95 % CI] | PSNR dB | SSIM |")
    print("|---|---|---|---|---|---|")
    po, uo = original["private"]["best"]["original"], original["utility"]["best"]["original"]
    print(f"| originals | {100 * po['accuracy']:.1f} ({po['attacker']}) | — | {100 * uo['accuracy']:.1f} "
          f"({uo['attacker']}) | — | 1 |")
    print(row(f"plain anonymizer, λ = {args.lam:g}", a_plain))
    for name, a in results:
        print(row(name, a))
    matched = abs(a_blur["quality"]["all"]["psnr_db"] - a_plain["quality"]["all"]["psnr_db"]) < 0.5
    print(row(f"Gaussian blur σ = {sigma:.2f} px " + ("(PSNR of the plain anonymizer)" if matched else
              "(the strongest tried: no blur lowers the PSNR to the anonymizer's)"), a_blur))
    print(f"\nchance: identity {100 * pch:.1f} %, expression {100 * uch:.1f} %")
    print("anonymizer training (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items())
          + " (0 when reused)")
    print(f"total wall time {wall:.0f} s; load average before {load0}, after {_load()} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
