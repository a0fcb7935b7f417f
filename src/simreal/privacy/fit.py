"""``simreal anonymize train``: the anonymizer's three training phases in a resumable run folder.

Phase 1: the autoencoder learns to reconstruct (pixel loss). Phase 2: the discriminator D and the private
classifier C are pre-trained, alternating with autoencoder updates on D's adversarial term only. Phase 3:
alternating updates of D, C and the autoencoder on eq. 12 (:mod:`simreal.privacy.objective`). Batches and
selector bits come from (seed, step), so a run resumed from a checkpoint continues exactly as an
uninterrupted run would.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from simreal.config import load_config
from simreal.datasets import Dataset, encode_image
from simreal.errors import ConfigError, DatasetError, RunError
from simreal.privacy.config import AnonymizeConfig
from simreal.privacy.data import image_channels, load_images, read_labels, split_mask
from simreal.privacy.nets import ConvAutoencoder, PairDiscriminator, private_classifier
from simreal.privacy.objective import discriminator_bce, empirical_prior, objective_terms, private_ce
from simreal.privacy.substitute import save_pool
from simreal.runtime.device import resolve_device
from simreal.runtime.progress import close_logger, make_progress
from simreal.runtime.runstore import RUN_JSON, RunStore
from simreal.runtime.seeding import sample_rng, sample_seed

RUN_KIND = "anonymize"
VOLATILE = ("device", "train.threads", "train.log_every", "train.sample_every", "train.num_samples",
            "train.keep_checkpoints", "intertwined.substitute")
"""Config keys a resumed run may change: they cannot change the trained networks."""


@dataclass(frozen=True)
class AnonymizeResult:
    """What :func:`train` returns: the run folder, its length, the final autoencoder and the last metrics."""

    run: Path
    steps: int
    final: Path
    metrics: dict[str, Any]


@dataclass
class Networks:
    ae: ConvAutoencoder
    disc: PairDiscriminator
    priv: torch.nn.Module
    opts: dict[str, torch.optim.Optimizer]

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"ae": self.ae, "disc": self.disc, "priv": self.priv}


def build_networks(cfg: AnonymizeConfig, channels: int, num_classes: int, device: torch.device) -> Networks:
    """The three networks and their Adam optimisers (initial weights from ``train.seed``)."""
    m, t = cfg.model, cfg.train
    torch.manual_seed(t.seed)
    ae = ConvAutoencoder(channels, m.width, m.code_channels).to(device)
    disc = PairDiscriminator(channels, m.discriminator, m.discriminator_width).to(device)
    priv = private_classifier(channels, num_classes, m.private, m.private_width).to(device)
    betas = (t.beta1, 0.999)
    opts = {"ae": torch.optim.Adam(ae.parameters(), t.lr, betas=betas),
            "disc": torch.optim.Adam(disc.parameters(), t.lr_discriminator, betas=betas),
            "priv": torch.optim.Adam(priv.parameters(), t.lr_private, betas=betas)}
    return Networks(ae, disc, priv, opts)


def pixel_loss(kind: str, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The reconstruction loss of ``x_hat`` (sigmoid outputs) against ``x`` (both in [0, 1])."""
    if kind == "bce":
        return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x)
    return F.l1_loss(x_hat, x) if kind == "l1" else F.mse_loss(x_hat, x)


def phase_of(step: int, cfg: AnonymizeConfig) -> int:
    """1, 2 or 3: the phase that training step ``step`` (0-based) belongs to."""
    t = cfg.train
    return 1 if step < t.pretrain_steps else (2 if step < t.pretrain_steps + t.disc_pretrain_steps else 3)


def _requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def train_step(nets: Networks, cfg: AnonymizeConfig, phase: int, x: torch.Tensor, z: torch.Tensor,
               ref: torch.Tensor, prior: torch.Tensor) -> dict[str, float]:
    """One step of ``phase`` on a batch: images ``x``, private labels ``z``, D's real images ``ref``
    (``x`` itself, or images of the chosen identity in intertwined mode). Returns the logged values."""
    t, loss_cfg = cfg.train, cfg.loss
    out: dict[str, float] = {}
    if phase == 1:
        x_hat = nets.ae(x)
        loss = pixel_loss(loss_cfg.pixel_kind, x_hat, x)
        nets.opts["ae"].zero_grad(set_to_none=True)
        loss.backward()
        nets.opts["ae"].step()
        return {"rec": float(F.l1_loss(x_hat.detach(), x))}
    n = x.shape[0]
    with torch.no_grad():
        x_fixed = nets.ae(x)
    for _ in range(t.disc_updates):  # eq. 13
        s = torch.randint(0, 2, (n,), device=x.device)
        logits = nets.disc(ref, x_fixed, s)
        d_loss = discriminator_bce(logits, s)
        nets.opts["disc"].zero_grad(set_to_none=True)
        d_loss.backward()
        nets.opts["disc"].step()
    out["d_loss"] = float(d_loss.detach())
    out["d_acc"] = float(((logits > 0).long() == s).float().mean())
    for _ in range(t.private_updates):  # eq. 14
        c_logits = nets.priv(x_fixed)
        c_loss = private_ce(c_logits, z)
        nets.opts["priv"].zero_grad(set_to_none=True)
        c_loss.backward()
        nets.opts["priv"].step()
    out["c_loss"] = float(c_loss.detach())
    out["c_acc"] = float((c_logits.argmax(1) == z).float().mean())
    # the autoencoder against D and C (eq. 12; lambda is 0 in phase 2)
    _requires_grad(nets.disc, False)
    _requires_grad(nets.priv, False)
    try:
        x_hat = nets.ae(x)
        s = torch.randint(0, 2, (n,), device=x.device)
        terms = objective_terms(nets.disc(ref, x_hat, s), s, nets.priv(x_hat), z, prior,
                                loss_cfg.lam if phase == 3 else 0.0)
        loss = loss_cfg.adversarial * terms.bce_adv + (loss_cfg.lam if phase == 3 else 0.0) * terms.privacy
        if loss_cfg.pixel > 0:
            loss = loss + loss_cfg.pixel * pixel_loss(loss_cfg.pixel_kind, x_hat, x)
        nets.opts["ae"].zero_grad(set_to_none=True)
        loss.backward()
        nets.opts["ae"].step()
    finally:
        _requires_grad(nets.disc, True)
        _requires_grad(nets.priv, True)
    out.update({"rec": float(F.l1_loss(x_hat.detach(), x)), "adv": terms.bce_adv.item(),
                "l_priv": terms.l_priv.item(), "l_obj": terms.l_obj.item(), "privacy": terms.privacy.item(),
                "ae_loss": loss.item()})
    return out


def _grid(x: torch.Tensor, x_hat: torch.Tensor, pad: int = 2) -> np.ndarray:
    """Rows = samples, columns = original | anonymized, as one uint8 image."""
    n, c, h, w = x.shape
    grid = torch.ones(c, n * h + (n + 1) * pad, 2 * w + 3 * pad)
    for i in range(n):
        y0 = pad + i * (h + pad)
        grid[:, y0:y0 + h, pad:pad + w] = x[i]
        grid[:, y0:y0 + h, 2 * pad + w:2 * pad + 2 * w] = x_hat[i]
    arr = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if c == 1 else arr


def _sample_indices(z: np.ndarray, k: int) -> np.ndarray:
    """``k`` training images, one per private class in turn (so every identity shows in the grid)."""
    by_class = [np.flatnonzero(z == c) for c in np.unique(z)]
    out: list[int] = []
    depth = 0
    while len(out) < min(k, len(z)):
        for ids in by_class:
            if depth < len(ids) and len(out) < k:
                out.append(int(ids[depth]))
        depth += 1
    return np.array(out, dtype=np.int64)


def train(data: str | Path, out: str | Path, config: AnonymizeConfig | str | Path | dict[str, Any] | None = None,
          *, private_label: str | None = None, overrides: dict[str, Any] | None = None, device: str | None = None,
          progress: bool = True) -> AnonymizeResult:
    """Train (or resume) an anonymizer on dataset ``data`` whose records carry the private label field
    (``private_label`` or ``data.private_label``). ``config`` is an AnonymizeConfig, a YAML path, a dict or
    None: the defaults for a new run, the run's own config when ``out`` already holds an anonymize run."""
    out = Path(out)
    if (out / RUN_JSON).is_file():  # a run folder of another kind is refused before any work
        existing = RunStore.open(out, RUN_KIND)
        if config is None:
            config = existing.config(AnonymizeConfig)
    ov = dict(overrides or {})
    if private_label is not None:
        ov["data.private_label"] = private_label
    if device is not None:
        ov["device"] = device
    cfg = load_config(AnonymizeConfig, config, ov)
    field = cfg.data.private_label
    if not field:
        raise ConfigError("data.private_label: not set (give --private-label FIELD or set it in the config)")
    dev = resolve_device(cfg.device, "device")
    ds = Dataset.open(data)
    labels = read_labels(ds, field)
    held = split_mask(ds, cfg.data.split_field, cfg.data.holdout)
    train_idx = np.flatnonzero(~held)
    if len(np.unique(labels.index[train_idx])) < 2:
        raise DatasetError(f"{ds.root}: the training records (split != {cfg.data.holdout!r}) hold fewer than 2 "
                           f"values of {field!r}")
    channels = image_channels(ds, cfg.data.channels)
    images = load_images(ds, channels, progress, "load images")[train_idx]
    z_np = labels.index[train_idx]
    t = cfg.train
    identity = None
    pool_idx = np.arange(len(train_idx))
    if cfg.intertwined.enabled:
        counts = np.bincount(z_np, minlength=labels.num_classes)
        identity = cfg.intertwined.identity or labels.classes[int(counts.argmax())]
        if identity not in labels.classes:
            raise ConfigError(f"intertwined.identity: {identity!r} is not a value of {field!r} (values: "
                              f"{', '.join(labels.classes[:12])}{' ...' if labels.num_classes > 12 else ''})")
        pool_idx = np.flatnonzero(z_np == labels.classes.index(identity))
        if len(pool_idx) == 0:
            raise DatasetError(f"{ds.root}: no training image of identity {identity!r}")
    prior_np = empirical_prior(z_np, labels.num_classes)
    info = {"data": str(data), "private_label": field, "classes": labels.classes, "channels": channels,
            "height": int(images.shape[2]), "width": int(images.shape[3]), "train_images": int(len(train_idx)),
            "prior": prior_np.tolist(), "identity": identity}
    store, resumed = RunStore.prepare(out, RUN_KIND, cfg, volatile=VOLATILE, info=info)
    if resumed:
        for key in ("private_label", "classes", "channels", "height", "width", "train_images", "identity"):
            if store.info.get(key) != info[key]:
                raise RunError(f"{out}: run was trained with {key} = {store.info.get(key)!r}, the data gives "
                               f"{info[key]!r}; use a new --out")
    if t.threads:
        torch.set_num_threads(t.threads)
    log = store.logger("anonymize")
    nets = build_networks(cfg, channels, labels.num_classes, dev)
    start = 0
    found = store.latest_checkpoint()
    if found is not None:
        store.load_checkpoint(found, nets.modules(), nets.opts, map_location="cpu")
        start = found.step
        log.info("resumed from %s (step %d)", found.path.name, start)
    store.truncate_metrics(start)
    total = t.pretrain_steps + t.disc_pretrain_steps + t.steps
    x_all = torch.from_numpy(images)
    z_all = torch.from_numpy(z_np)
    prior = torch.tensor(prior_np, dtype=torch.float32, device=dev)
    fixed = _sample_indices(z_np, t.num_samples) if t.num_samples else None
    log.info("anonymizer on %s: %d training images %dx%dx%d, private label %r with %d classes, lambda %g, "
             "phases %d/%d/%d steps, device %s%s", data, len(z_np), channels, images.shape[2], images.shape[3],
             field, labels.num_classes, cfg.loss.lam, t.pretrain_steps, t.disc_pretrain_steps, t.steps, dev,
             f", intertwined toward {identity!r}" if identity is not None else "")
    window: dict[str, list[float]] = defaultdict(list)
    last: dict[str, Any] = {}
    for m in nets.modules().values():
        m.train()
    n = len(z_np)
    bs = min(t.batch_size, n)
    tick = time.perf_counter()
    with make_progress("step", disable=not progress) as prog:
        task = prog.add_task(f"anonymize lambda={cfg.loss.lam:g}", total=total, completed=start)
        for step in range(start, total):
            phase = phase_of(step, cfg)
            rng = sample_rng(t.seed, step, stream=21)
            idx = rng.choice(n, bs, replace=False)
            ref_idx = idx if identity is None else pool_idx[rng.integers(0, len(pool_idx), bs)]
            torch.manual_seed(sample_seed(t.seed, step, stream=22))
            x = x_all[idx].to(dev)
            ref = x if identity is None else x_all[ref_idx].to(dev)
            values = train_step(nets, cfg, phase, x, z_all[idx].to(dev), ref, prior)
            for k, v in values.items():
                window[k].append(v)
            prog.advance(task)
            done = step + 1
            if done % t.log_every == 0 or done == total:
                now = time.perf_counter()
                count = len(window["rec"])
                last = {"step": done, "phase": phase, **{k: float(np.mean(v)) for k, v in window.items()},
                        "steps_per_s": count / max(now - tick, 1e-9)}
                store.log_metrics(last)
                tick = now
                window.clear()
            if fixed is not None and (done % t.sample_every == 0 or done == total):
                nets.ae.eval()
                with torch.no_grad():
                    xs = x_all[fixed]
                    grid = _grid(xs, nets.ae(xs.to(dev)).cpu())
                nets.ae.train()
                store.save_sample(f"step_{done:08d}.png", encode_image(grid))
            if done % t.checkpoint_every == 0 or done == total:
                store.save_checkpoint(done, nets.modules(), nets.opts, meta={"phase": phase},
                                      keep=t.keep_checkpoints)
                log.info("checkpoint step %d (phase %d) %s", done, phase,
                         " ".join(f"{k}={v:.4f}" for k, v in last.items() if isinstance(v, float)))
    if not last:  # a finished run opened again: its last logged record
        recs = store.read_metrics()
        last = recs[-1] if recs else {}
    meta = {"kind": RUN_KIND, "steps": total, "lambda": cfg.loss.lam, "private_label": field,
            "classes": labels.classes, "channels": channels, "height": int(images.shape[2]),
            "width": int(images.shape[3]), "identity": identity, "model": cfg.model.model_dump(mode="json")}
    final = store.save_model("final", nets.ae, meta)
    if identity is not None:
        pool_ids = [int(ds.images[int(train_idx[i])]["id"]) for i in pool_idx]
        save_pool(store.ck / "pool.safetensors", images[pool_idx], pool_ids, identity)
    from simreal.privacy.report import write_run_report

    write_run_report(store)
    log.info("done")
    close_logger(log)
    return AnonymizeResult(out, total, final, last)
