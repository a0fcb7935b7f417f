"""ADDA learning-rate sweep on the faces benchmark (diagnosis, not selection): the adaptation phase only,
from a source-only run of ``benchmarks/faces_adapt.py`` (same seed), logging at every evaluation the
label-free selection scores (importance-weighted validation; soft neighbourhood density; information maximisation), the
source-validation accuracy of the target encoder and -- for diagnosis only, never used by selection -- the
accuracy on the labelled target test set.
Seeded as ``simreal train`` is, so the config's own ``adda_lr`` reproduces the benchmark's ADDA run.
``--lr 0`` is not allowed by the config; a vanishing rate (1e-12) leaves only the BatchNorm statistics of
the target encoder adapting (AdaBN-like), the ablation of the adversarial weight updates.

    python benchmarks/faces_adda_sweep.py --runs ~/.cache/simreal/faces_bench/table3 --seed 0 \
        --lr 2e-4 2e-5 5e-6 1e-12 [--steps 600] [--eval-every 50]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from faces_adapt import ROOT, cache_dir


def traced_trainer(base: type) -> type:
    """``base`` (the Trainer) that also scores its ``test`` source at every evaluation into ``trace``."""
    from simreal.adapt.selection import (
        information_maximization,
        selection_score,
        soft_neighborhood_density,
        target_probabilities,
    )

    class Traced(base):  # type: ignore[misc, valid-type]
        test: Any
        trace: list[dict[str, Any]]

        def _evaluate(self, step: int) -> None:
            super()._evaluate(step)
            rec = {k: v for k, v in self.history[-1].items() if k not in ("eval", "phase")}
            rec["target_test"] = selection_score("source_val", self.task, self.model, self.test, None, None)
            prob = target_probabilities(self.task, self.model, self.target_unlab)  # one pass for both scores
            rec["snd"], rec["im"] = soft_neighborhood_density(prob), information_maximization(prob)
            self.trace.append(rec)

    return Traced


def main() -> None:
    import torch

    from simreal.adapt.api import build_data, build_model
    from simreal.adapt.config import TrainConfig
    from simreal.adapt.selection import selection_score
    from simreal.adapt.trainer import Trainer
    from simreal.config import load_config
    from simreal.datasets.contract import Dataset
    from simreal.datasets.torchdata import FolderSource
    from simreal.runtime.seeding import seed_everything

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=cache_dir() / "runs", help="faces_adapt.py --out folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, nargs="+", default=[2e-4, 2e-5, 5e-6, 1e-12])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = cache_dir()
    weights = args.runs / f"source_only_s{args.seed}" / "checkpoints" / "final.safetensors"
    print(f"load average {os.getloadavg()[0]:.1f} (1 min); source model {weights}")
    for lr in args.lr:
        over: dict[str, Any] = {
            "seed": args.seed, "method.name": "adda", "method.adda_lr": lr, "method.adda_steps": args.steps,
            "method.pretrain": False, "model.weights": str(weights), "selection.eval_every": args.eval_every,
            "selection.policy": "iwv",  # the trainer selects by iwv; snd and im are traced beside it
            "data.domains": [{"path": str(base / "render_source"), "name": "rendered", "role": "source"},
                             {"path": str(base / "target_unlabelled"), "name": "target", "role": "target",
                              "labelled": False}]}
        cfg = load_config(TrainConfig, ROOT / "configs/train/faces_adda.yaml", over)
        task, sources, val, _ = build_data(cfg)
        seed_everything(cfg.seed)  # as simreal.train does: the adda_lr of the config reproduces its ADDA run
        model = build_model(cfg, task)
        test_ds = Dataset.open(base / "target_test")
        test = FolderSource("target_test", len(sources), test_ds, tuple(cfg.data.image_size), cfg.data.channels,
                            task.target)
        t0 = time.perf_counter()
        tr = traced_trainer(Trainer)(task, model, sources, cfg.method, cfg.optim, cfg.selection, cfg.seed, val=val,
                                     progress=False, pretrained=True)
        tr.test, tr.trace = test, []
        fit = tr.fit()
        trace = tr.trace
        print(f"adda_lr {lr:g}: selected step {fit.selection['step']} (iwv {fit.selection['score']:.3f}) -> target "
              f"test {selection_score('source_val', task, fit.model, test, None, None):.3f}  "
              f"({time.perf_counter() - t0:.0f}s)")
        print("  step: target test / source val / iwv / snd / im  " + "  ".join(
            f"{r['step']}: {r['target_test']:.3f}/{r['source_val']:.2f}/{r['select/iwv']:.3f}/{r['snd']:.4f}/"
            f"{r['im']:.4f}" for r in trace), flush=True)
        for crit in ("select/iwv", "snd", "im"):  # what each label-free criterion would select (first best, as Trainer)
            best = max(trace, key=lambda r: (r[crit], -r["step"]))
            print(f"  {crit.split('/')[-1]} selects step {best['step']}: target test {best['target_test']:.3f}")
        print(f"  last (step {trace[-1]['step']}): target test {trace[-1]['target_test']:.3f}", flush=True)
        (args.runs / f"adda_sweep_s{args.seed}_lr{lr:g}.json").write_text(json.dumps(trace, indent=1))


if __name__ == "__main__":
    main()
