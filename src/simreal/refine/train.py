"""``simreal refine train``: the training loop with run folder, checkpoints, resume, samples and logs."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.config import dump_config
from simreal.datasets import Dataset, encode_image
from simreal.errors import RunError
from simreal.refine.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from simreal.refine.config import RefinerConfig
from simreal.refine.data import ImageSet, resolve_channels, to_uint8
from simreal.refine.models import build_model, model_summary
from simreal.refine.run import RUN_JSON, RUN_KIND, read_run, read_run_config
from simreal.runtime.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from simreal.runtime.progress import close_logger, folder_logger, make_progress
from simreal.runtime.seeding import sample_rng, sample_seed


def sample_grid(columns: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Rows = samples, columns = views (e.g. input | refined | cycle) as one uint8 image."""
    n, c, h, w = columns[0].shape
    grid = torch.ones(c, n * h + (n + 1) * pad, len(columns) * w + (len(columns) + 1) * pad)
    for i in range(n):
        for j, col in enumerate(columns):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y : y + h, x : x + w] = col[i].clamp(-1, 1)
    return to_uint8(grid)


def _prepare_run(
    out: Path, cfg: RefinerConfig | None, source: str, target: str
) -> tuple[RefinerConfig, bool]:
    """Validate ``out``: new (or empty) folder, or an existing refiner run with a compatible config."""
    if (out / RUN_JSON).is_file():
        info = read_run(out)
        old = read_run_config(out)
        if cfg is None:
            cfg = old
        if info.get("model") != cfg.model or old.architecture() != cfg.architecture():
            raise RunError(
                f"{out}: holds a {info.get('model')} run with a different architecture; "
                "use another --out or the run's own config"
            )
        return cfg, True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"{out}: exists and is not a refiner run folder; choose another --out")
    return cfg or RefinerConfig(), False


def _trim_metrics(path: Path, iteration: int) -> None:
    """Drop metrics.jsonl lines logged after ``iteration`` (work lost when a run was killed)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if int(rec.get("iteration", 0)) <= iteration:
            keep.append(line)
    atomic_write_text(path, "".join(k + "\n" for k in keep))


def train(
    source: str | Path,
    target: str | Path,
    out: str | Path,
    cfg: RefinerConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a refiner from ``source`` (synthetic, domain A) to ``target`` (real, domain B)."""
    out = Path(out)
    cfg, existing = _prepare_run(out, cfg, str(source), str(target))
    src_ds, tgt_ds = Dataset.open(source), Dataset.open(target)
    channels = resolve_channels(src_ds, tgt_ds, cfg.data.channels)
    needs_masks = cfg.loss.lambda_mask_identity > 0
    set_a = ImageSet(src_ds, channels, cfg.data, cfg.crops, "source", with_masks=needs_masks)
    set_b = ImageSet(tgt_ds, channels, cfg.data, cfg.crops, "target", with_masks=needs_masks)
    set_a.check_all()
    set_b.check_all()
    if existing and int(read_run(out).get("channels", channels)) != channels:
        raise RunError(
            f"{out}: run was trained on {read_run(out)['channels']}-channel images, data has {channels}"
        )
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)

    t = cfg.train
    total_epochs = t.epochs + t.epochs_decay
    ipe = t.iterations_per_epoch or math.ceil(max(len(set_a), len(set_b)) / t.batch_size)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    if not existing:
        atomic_write_json(
            out / RUN_JSON,
            {
                "kind": RUN_KIND,
                "model": cfg.model,
                "channels": channels,
                "source": str(source),
                "target": str(target),
                "iterations_per_epoch": ipe,
            },
        )
    else:
        ipe = int(read_run(out).get("iterations_per_epoch", ipe)) if t.iterations_per_epoch is None else ipe
    log = folder_logger(out, "refine", "log.txt")
    torch.manual_seed(t.seed)
    model = build_model(cfg, channels)
    model.train()
    start_epoch = 0
    found = latest_checkpoint(out)
    if found is not None:
        meta = load_checkpoint(model, found[0])
        start_epoch = int(meta["epoch"])
        log.info("resumed from %s (epoch %d, iteration %d)", found[0].name, start_epoch, meta["iteration"])
    _trim_metrics(out / "metrics.jsonl", start_epoch * ipe)
    log.info(
        "training %s: %d source samples, %d target samples, %d iterations/epoch, epochs %d..%d; params %s",
        cfg.model,
        len(set_a),
        len(set_b),
        ipe,
        start_epoch + 1,
        total_epochs,
        model_summary(model),
    )
    fixed = set_a.fixed_samples(t.num_samples) if t.num_samples else None
    metrics_path = out / "metrics.jsonl"
    total_iters = total_epochs * ipe
    with make_progress("it") as prog, open(metrics_path, "a", encoding="utf-8") as mfile:
        task = prog.add_task(f"refine {cfg.model}", total=total_iters, completed=start_epoch * ipe)
        for epoch in range(start_epoch, total_epochs):
            lr = model.set_epoch(epoch)
            order = sample_rng(t.seed, epoch, stream=11).permutation(len(set_a))
            window: dict[str, list[float]] = defaultdict(list)
            epoch_sums: dict[str, list[float]] = defaultdict(list)
            tick = time.perf_counter()
            for k in range(ipe):
                it = epoch * ipe + k
                rng = sample_rng(t.seed, it, stream=12)
                torch.manual_seed(sample_seed(t.seed, it, stream=13))
                a_items = [int(order[(k * t.batch_size + j) % len(order)]) for j in range(t.batch_size)]
                b_items = [int(v) for v in rng.integers(0, len(set_b), t.batch_size)]
                real_a, mask_a = set_a.batch(a_items, rng)
                real_b, mask_b = set_b.batch(b_items, rng)
                losses = model.train_step(real_a, real_b, mask_a, mask_b, epoch)
                for name, v in losses.items():
                    window[name].append(v)
                    epoch_sums[name].append(v)
                prog.advance(task)
                if (it + 1) % t.log_every == 0 or k == ipe - 1:
                    now = time.perf_counter()
                    n_win = len(next(iter(window.values())))
                    rec = {
                        "iteration": it + 1,
                        "epoch": epoch + 1,
                        "lr": lr,
                        **{n: float(np.mean(v)) for n, v in window.items()},
                        "it_per_s": n_win / max(now - tick, 1e-9),
                    }
                    tick = now
                    mfile.write(json.dumps(rec) + "\n")
                    mfile.flush()
                    window.clear()
            summary = {n: float(np.mean(v)) for n, v in epoch_sums.items()}
            log.info(
                "epoch %d/%d lr %.3g %s",
                epoch + 1,
                total_epochs,
                lr,
                " ".join(f"{n}={v:.4f}" for n, v in summary.items()),
            )
            if fixed is not None:
                model.eval()
                grid = sample_grid(model.sample_columns(fixed))
                model.train()
                atomic_write_bytes(out / "samples" / f"epoch_{epoch + 1:04d}.png", encode_image(grid))
            if (epoch + 1) % t.checkpoint_every == 0 or epoch + 1 == total_epochs:
                save_checkpoint(
                    out,
                    model,
                    {
                        "epoch": epoch + 1,
                        "iteration": (epoch + 1) * ipe,
                        "channels": channels,
                        "architecture": cfg.architecture(),
                        "config": cfg.model_dump(mode="json"),
                        "losses": summary,
                    },
                    keep=t.keep_checkpoints,
                )
                log.info("checkpoint epoch %d", epoch + 1)
    log.info("done")
    close_logger(log)
    last = latest_checkpoint(out)
    return {
        "run": str(out),
        "epochs": total_epochs,
        "iterations": total_iters,
        "checkpoint": None if last is None else str(last[0]),
    }
