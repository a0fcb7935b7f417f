"""Refiner models: CycleGAN (with the skip, masked-identity, perceptual and AGGAN variants) and CUT.

Naming: ``G_A`` maps domain A (synthetic) to B (real), ``G_B`` maps back; ``D_B`` judges domain-B
images (the reference calls it ``netD_A``) and ``D_A`` judges domain-A images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simreal.nn.features import DiscriminatorFeatureExtractor, FeatureExtractor, VGGFeatureExtractor
from simreal.nn.gan import (
    AttentionNet,
    GANLoss,
    ImagePool,
    NLayerDiscriminator,
    build_generator,
    init_weights,
)
from simreal.nn.patchnce import PatchSampleF, patch_nce_loss
from simreal.refine.config import RefinerConfig
from simreal.refine.consistency import SemanticConsistency
from simreal.runtime.compute import Compute
from simreal.runtime.distributed import unwrap


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def masked_l1(a: Tensor, b: Tensor, mask: Tensor | None) -> Tensor:
    """Mean |a − b| over the mask's pixels (0 when the mask is empty or None)."""
    if mask is None:
        return a.new_zeros(())
    m = mask.expand_as(a)
    return ((a - b).abs() * m).sum() / m.sum().clamp_min(1.0)


def lr_multiplier(epoch: int, epochs: int, epochs_decay: int) -> float:
    """Reference linear policy: constant for ``epochs``, then linear decay (epoch is 0-based)."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


class RefinerModel(nn.Module):
    """Shared plumbing: networks, optimisers, learning-rate schedule, perceptual losses."""

    kind = "base"

    def __init__(self, cfg: RefinerConfig, channels: int, cond_classes: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.channels = channels
        # class-conditional discriminators: one-hot class maps as extra input channels (0: unconditional)
        self.cond_classes = int(cond_classes)
        self.gan_loss = GANLoss(cfg.loss.gan_mode)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.feature_ema: dict[str, Tensor] = {}
        self._features: FeatureExtractor | None = None
        self.consistency: SemanticConsistency | None = None  # set by the trainer (refine.consistency)
        self.amp = Compute()  # device/precision of the training step (set by the trainer)

    # construction helpers --------------------------------------------------
    def _generator(self) -> nn.Module:
        n = self.cfg.net
        g = build_generator(
            n.generator, self.channels, self.channels, n.ngf, n.n_blocks, n.unet_downs, n.dropout, n.skip
        )
        return init_weights(g, n.init_type or self.default_init, n.init_gain)

    def _discriminator(self) -> NLayerDiscriminator:
        n = self.cfg.net
        return init_weights(
            NLayerDiscriminator(self.channels + self.cond_classes, n.ndf, n.n_layers_d),
            n.init_type or self.default_init,
            n.init_gain,
        )  # type: ignore[return-value]

    default_init = "normal"

    def _conditioning(self, real_a: Tensor, labels_a: Tensor | None, real_b: Tensor
                      ) -> tuple[Tensor | None, Tensor | None, Any, Any]:
        """(classes of ``real_a``, classes of ``real_b``, task-model references of both) for class-conditional
        discriminators — the label where given, else the frozen task model's prediction
        (:meth:`SemanticConsistency.classes`); the references are reused by the consistency loss. All None when
        the discriminators are unconditional."""
        if not self.cond_classes:
            return None, None, None, None
        if self.consistency is None:
            raise RuntimeError("class-conditional discriminators need the semantic-consistency task model")
        c = self.consistency
        ref_a, ref_b = c.reference(real_a), c.reference(real_b)
        return c.classes(real_a, labels_a, ref_a), c.classes(real_b, None, ref_b), ref_a, ref_b

    def _d_in(self, x: Tensor, classes: Tensor | None) -> Tensor:
        """A discriminator's input: ``x``, with one one-hot map per class appended when conditional."""
        if classes is None:
            return x
        onehot = F.one_hot(classes, self.cond_classes).to(x.dtype)[:, :, None, None]
        return torch.cat([x, onehot.expand(-1, -1, *x.shape[-2:])], 1)

    def _adam(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        t = self.cfg.train
        return torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2))

    def _setup_features(self, discriminators: dict[str, NLayerDiscriminator]) -> None:
        p = self.cfg.loss.perceptual
        if p.extractor == "vgg16":
            from simreal.nn.vgg import load_vgg16

            self._features = VGGFeatureExtractor(load_vgg16(p.vgg_weights or "", p.vgg_layers))
        elif p.extractor == "discriminator":
            self._features = DiscriminatorFeatureExtractor(discriminators, p.disc_layers)

    def _apply(self, fn: Any, recurse: bool = True) -> RefinerModel:
        # .to(device)/.float() also reach the VGG16 of a perceptual loss (held outside the module tree so
        # checkpoints do not carry its fixed weights)
        super()._apply(fn, recurse)
        vgg = getattr(getattr(self, "_features", None), "vgg", None)
        if isinstance(vgg, nn.Module):
            vgg._apply(fn, recurse)
        return self

    # public API ----------------------------------------------------------------
    def set_epoch(self, epoch: int) -> float:
        """Set every optimiser's learning rate for 0-based ``epoch``; returns it."""
        t = self.cfg.train
        lr = t.lr * lr_multiplier(epoch, t.epochs, t.epochs_decay)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    def refine(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def train_step(
        self, real_a: Tensor, real_b: Tensor, mask_a: Tensor | None, mask_b: Tensor | None, epoch: int,
        labels_a: Tensor | None = None,
    ) -> dict[str, Tensor]:  # pragma: no cover - overridden
        """One update of every network; the losses as detached 0-dim tensors (no host sync per step).
        ``labels_a`` (B,) are the source labels for semantic consistency (-1: none)."""
        raise NotImplementedError

    def sample_columns(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - overridden
        raise NotImplementedError

    def extra_tensors(self) -> dict[str, Tensor]:
        """Non-parameter training state for checkpoints (image pools, feature means)."""
        return {f"ema.{k}": v for k, v in self.feature_ema.items()}

    def load_extra_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.feature_ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}

    # perceptual losses -----------------------------------------------------------
    def _feat(self, x: Tensor, domain: str) -> list[Tensor]:
        assert self._features is not None
        return self._features(x, domain)

    def _feat_l1(self, a: Tensor, b: Tensor, domain: str) -> Tensor:
        fa, fb = self._feat(a, domain), self._feat(b, domain)
        return sum((F.l1_loss(x, y.detach()) for x, y in zip(fa, fb, strict=True)), a.new_zeros(()))

    def _mean_feat_loss(self, fake: Tensor, real: Tensor, domain: str) -> Tensor:
        """L1 between the refined batch's mean feature and an EMA of the real set's mean feature."""
        mom = self.cfg.loss.perceptual.mean_momentum
        loss = fake.new_zeros(())
        with torch.no_grad():
            real_means = [f.float().mean(dim=(0, 2, 3)) for f in self._feat(real, domain)]
        for i, (ff, rm) in enumerate(zip(self._feat(fake, domain), real_means, strict=True)):
            key = f"{domain}.{i}"
            prev = self.feature_ema.get(key)
            self.feature_ema[key] = (
                rm if prev is None or prev.shape != rm.shape else mom * prev + (1 - mom) * rm
            )
            loss = loss + F.l1_loss(ff.mean(dim=(0, 2, 3)), self.feature_ema[key])
        return loss


class CycleGAN(RefinerModel):
    """CycleGAN (LSGAN, cycle L1, identity, image pools), optionally with AGGAN attention."""

    kind = "cyclegan"

    def __init__(self, cfg: RefinerConfig, channels: int, cond_classes: int = 0) -> None:
        super().__init__(cfg, channels, cond_classes)
        self.G_A, self.G_B = self._generator(), self._generator()
        self.D_A, self.D_B = self._discriminator(), self._discriminator()
        self.aggan = cfg.aggan.enabled
        g_params = list(self.G_A.parameters()) + list(self.G_B.parameters())
        if self.aggan:
            self.att_A = init_weights(AttentionNet(channels, cfg.aggan.nf), "normal", cfg.net.init_gain)
            self.att_B = init_weights(AttentionNet(channels, cfg.aggan.nf), "normal", cfg.net.init_gain)
            g_params += list(self.att_A.parameters()) + list(self.att_B.parameters())
        self.optimizers = {
            "G": self._adam(g_params),
            "D": self._adam(list(self.D_A.parameters()) + list(self.D_B.parameters())),
        }
        self.pool_A, self.pool_B = ImagePool(cfg.train.pool_size), ImagePool(cfg.train.pool_size)
        self._setup_features({"A": self.D_A, "B": self.D_B})

    # translation -------------------------------------------------------------
    def _translate(self, x: Tensor, g: nn.Module, att: nn.Module | None) -> tuple[Tensor, Tensor | None]:
        y = g(x)
        if att is None:
            return y, None
        a = att(x)
        return a * y + (1 - a) * x, a

    def translate_a(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self._translate(x, self.G_A, self.att_A if self.aggan else None)

    def translate_b(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self._translate(x, self.G_B, self.att_B if self.aggan else None)

    def refine(self, x: Tensor) -> Tensor:
        return self.translate_a(x)[0]

    def after_switch(self, epoch: int) -> bool:
        return self.aggan and epoch >= self.cfg.aggan.switch_epoch

    def _d_mask(self, a: Tensor | None, switched: bool) -> Tensor | float:
        if a is None or not switched:
            return 1.0
        return (a.detach() >= self.cfg.aggan.threshold).to(a.dtype)

    # training ---------------------------------------------------------------------
    def train_step(
        self, real_a: Tensor, real_b: Tensor, mask_a: Tensor | None, mask_b: Tensor | None, epoch: int,
        labels_a: Tensor | None = None,
    ) -> dict[str, Tensor]:
        with self.amp.autocast():
            out = self._train_step(real_a, real_b, mask_a, mask_b, epoch, labels_a)
        self.amp.update()
        return out

    def _train_step(
        self, real_a: Tensor, real_b: Tensor, mask_a: Tensor | None, mask_b: Tensor | None, epoch: int,
        labels_a: Tensor | None = None,
    ) -> dict[str, Tensor]:
        cfg = self.cfg
        la, lb = cfg.loss.lambda_A, cfg.loss.lambda_B
        switched = self.after_switch(epoch)
        if self.aggan:
            for d in (self.D_A, self.D_B):
                unwrap(d).norm_enabled = not switched
            set_requires_grad([self.att_A, self.att_B], not switched)

        y_a, y_b, ref_a, ref_b = self._conditioning(real_a, labels_a, real_b)
        fake_b, att_a = self.translate_a(real_a)
        rec_a, _ = self.translate_b(fake_b)
        fake_a, att_b = self.translate_b(real_b)
        rec_b, _ = self.translate_a(fake_a)
        dm_fake_b, dm_fake_a = self._d_mask(att_a, switched), self._d_mask(att_b, switched)

        # generators
        set_requires_grad([self.D_A, self.D_B], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        losses: dict[str, Tensor] = {}
        losses["G_A"] = self.gan_loss(self.D_B(self._d_in(fake_b * dm_fake_b, y_a)), True)
        losses["G_B"] = self.gan_loss(self.D_A(self._d_in(fake_a * dm_fake_a, y_b)), True)
        losses["cycle_A"] = F.l1_loss(rec_a, real_a) * la
        losses["cycle_B"] = F.l1_loss(rec_b, real_b) * lb
        lid = cfg.loss.lambda_identity
        if lid > 0:
            losses["idt_A"] = F.l1_loss(self.G_A(real_b), real_b) * lb * lid
            losses["idt_B"] = F.l1_loss(self.G_B(real_a), real_a) * la * lid
        lm = cfg.loss.lambda_mask_identity
        if lm > 0:
            losses["mask_idt_A"] = masked_l1(fake_b, real_a, mask_a) * lm
            if mask_b is not None:
                losses["mask_idt_B"] = masked_l1(fake_a, real_b, mask_b) * lm
        p = cfg.loss.perceptual
        if p.lambda_cycle_feat > 0:
            losses["cycle_feat"] = (
                self._feat_l1(rec_a, real_a, "A") + self._feat_l1(rec_b, real_b, "B")
            ) * p.lambda_cycle_feat
        if p.lambda_identity_feat > 0:
            losses["idt_feat"] = (
                self._feat_l1(fake_b, real_a, "B") + self._feat_l1(fake_a, real_b, "A")
            ) * p.lambda_identity_feat
        if p.lambda_mean_feat > 0:
            losses["mean_feat"] = (
                self._mean_feat_loss(fake_b, real_b, "B") + self._mean_feat_loss(fake_a, real_a, "A")
            ) * p.lambda_mean_feat
        if self.consistency is not None and self.consistency.weight > 0:
            losses.update(self.consistency.losses(real_a, fake_b, labels_a, real_b, fake_a, ref_a, ref_b))
        loss_g = sum(losses.values(), real_a.new_zeros(()))
        self.amp.backward(loss_g)
        self.amp.step(self.optimizers["G"])

        # discriminators
        set_requires_grad([self.D_A, self.D_B], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with torch.no_grad():
            rm_b = self._d_mask(self.att_B(real_b), switched) if switched else 1.0
            rm_a = self._d_mask(self.att_A(real_a), switched) if switched else 1.0
        # the pools keep each fake with its class maps
        pooled_b = self.pool_B.query(self._d_in((fake_b * dm_fake_b).detach(), y_a))
        pooled_a = self.pool_A.query(self._d_in((fake_a * dm_fake_a).detach(), y_b))
        losses["D_B"] = 0.5 * (
            self.gan_loss(self.D_B(self._d_in(real_b * rm_b, y_b)), True) + self.gan_loss(self.D_B(pooled_b), False)
        )
        losses["D_A"] = 0.5 * (
            self.gan_loss(self.D_A(self._d_in(real_a * rm_a, y_a)), True) + self.gan_loss(self.D_A(pooled_a), False)
        )
        self.amp.backward(losses["D_A"] + losses["D_B"])
        self.amp.step(self.optimizers["D"])
        out = {k: v.detach() for k, v in losses.items()}
        out["G"] = loss_g.detach()
        return out

    @torch.no_grad()
    def sample_columns(self, x: Tensor) -> list[Tensor]:
        fake, att = self.translate_a(x)
        rec, _ = self.translate_b(fake)
        cols = [x, fake, rec]
        if att is not None:
            cols.append(att.expand_as(x) * 2 - 1)
        return cols

    def extra_tensors(self) -> dict[str, Tensor]:
        out = super().extra_tensors()
        for name, pool in (("A", self.pool_A), ("B", self.pool_B)):
            st = pool.state()
            if st is not None:
                out[f"pool.{name}"] = st
        return out

    def load_extra_tensors(self, tensors: dict[str, Tensor]) -> None:
        super().load_extra_tensors(tensors)
        self.pool_A.load(tensors.get("pool.A"))
        self.pool_B.load(tensors.get("pool.B"))


class CUT(RefinerModel):
    """Contrastive unpaired translation: one generator, one PatchGAN, PatchNCE over encoder layers.

    The key features of the real input are taken from the same generator pass that produces the output
    (identical to CUT's separate encode of the input, one encoder pass cheaper)."""

    kind = "cut"
    default_init = "xavier"

    def __init__(self, cfg: RefinerConfig, channels: int, cond_classes: int = 0) -> None:
        super().__init__(cfg, channels, cond_classes)
        self.G = self._generator()
        self.D = self._discriminator()
        self.layers = list(cfg.cut.nce_layers)
        n_layers = len(self.G.model)  # type: ignore[arg-type]
        bad = [i for i in self.layers if not 0 <= i < n_layers]
        if bad:
            raise ValueError(f"cut.nce_layers {bad} out of range 0..{n_layers - 1}")
        with torch.no_grad():
            feats = self.G(torch.zeros(1, channels, 16, 16), self.layers, encode_only=True)
        self.F = init_weights(
            PatchSampleF([f.shape[1] for f in feats], cfg.cut.netf_nc),
            cfg.net.init_type or self.default_init,
            cfg.net.init_gain,
        )
        self.optimizers = {
            "G": self._adam(list(self.G.parameters())),
            "D": self._adam(list(self.D.parameters())),
            "F": self._adam(list(self.F.parameters())),
        }
        self._setup_features({"B": self.D, "A": self.D})

    def refine(self, x: Tensor) -> Tensor:
        return self.G(x)

    def _nce(self, feat_k: list[Tensor], src: Tensor, batch: int) -> Tensor:
        feat_q = self.G(src, self.layers, encode_only=True)
        k_pool, ids = self.F([f.detach() for f in feat_k], self.cfg.cut.num_patches)
        q_pool, _ = self.F(feat_q, self.cfg.cut.num_patches, ids)
        total = src.new_zeros(())
        for q, k in zip(q_pool, k_pool, strict=True):
            total = total + patch_nce_loss(q, k, batch, self.cfg.cut.nce_t).mean()
        return total / len(self.layers)

    def train_step(
        self, real_a: Tensor, real_b: Tensor, mask_a: Tensor | None, mask_b: Tensor | None, epoch: int,
        labels_a: Tensor | None = None,
    ) -> dict[str, Tensor]:
        with self.amp.autocast():
            out = self._train_step(real_a, real_b, mask_a, mask_b, labels_a)
        self.amp.update()
        return out

    def _train_step(
        self, real_a: Tensor, real_b: Tensor, mask_a: Tensor | None, mask_b: Tensor | None,
        labels_a: Tensor | None = None,
    ) -> dict[str, Tensor]:
        cfg = self.cfg
        n = real_a.shape[0]
        idt = cfg.cut.nce_idt and cfg.cut.lambda_nce > 0
        real = torch.cat([real_a, real_b], 0) if idt and real_b.shape[-2:] == real_a.shape[-2:] else real_a
        fake, feats_real = self.G(real, self.layers)
        fake_b = fake[:n]
        losses: dict[str, Tensor] = {}
        y_a, y_b, ref_a, _ = self._conditioning(real_a, labels_a, real_b)

        # discriminator first (as CUT does)
        set_requires_grad([self.D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        losses["D"] = 0.5 * (
            self.gan_loss(self.D(self._d_in(fake_b.detach(), y_a)), False)
            + self.gan_loss(self.D(self._d_in(real_b, y_b)), True)
        )
        self.amp.backward(losses["D"])
        self.amp.step(self.optimizers["D"])

        # generator and F
        set_requires_grad([self.D], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        self.optimizers["F"].zero_grad(set_to_none=True)
        g_losses: dict[str, Tensor] = {}
        if cfg.cut.lambda_gan > 0:
            g_losses["G_GAN"] = self.gan_loss(self.D(self._d_in(fake_b, y_a)), True) * cfg.cut.lambda_gan
        if cfg.cut.lambda_nce > 0:
            g_losses["NCE"] = self._nce([f[:n] for f in feats_real], fake_b, n) * cfg.cut.lambda_nce
            if real.shape[0] > n:
                g_losses["NCE_Y"] = (
                    self._nce([f[n:] for f in feats_real], fake[n:], real_b.shape[0]) * cfg.cut.lambda_nce
                )
        lm = cfg.loss.lambda_mask_identity
        if lm > 0:
            g_losses["mask_idt_A"] = masked_l1(fake_b, real_a, mask_a) * lm
        p = cfg.loss.perceptual
        if p.lambda_identity_feat > 0:
            g_losses["idt_feat"] = self._feat_l1(fake_b, real_a, "B") * p.lambda_identity_feat
        if p.lambda_mean_feat > 0:
            g_losses["mean_feat"] = self._mean_feat_loss(fake_b, real_b, "B") * p.lambda_mean_feat
        if self.consistency is not None and self.consistency.weight > 0:
            g_losses.update(self.consistency.losses(real_a, fake_b, labels_a, ref_a=ref_a))
        if "NCE_Y" in g_losses:
            total = g_losses.get("G_GAN", real_a.new_zeros(())) + (g_losses["NCE"] + g_losses["NCE_Y"]) * 0.5
            total = total + sum(
                (v for k, v in g_losses.items() if k not in ("G_GAN", "NCE", "NCE_Y")), real_a.new_zeros(())
            )
        else:
            total = sum(g_losses.values(), real_a.new_zeros(()))
        self.amp.backward(total)
        self.amp.step(self.optimizers["G"])
        self.amp.step(self.optimizers["F"])
        set_requires_grad([self.D], True)
        losses.update(g_losses)
        out = {k: v.detach() for k, v in losses.items()}
        out["G"] = total.detach()
        return out

    @torch.no_grad()
    def sample_columns(self, x: Tensor) -> list[Tensor]:
        fake = self.G(x)
        return [x, fake, ((fake - x).abs() * 2 - 1).clamp(-1, 1)]


def build_model(cfg: RefinerConfig, channels: int, cond_classes: int = 0) -> RefinerModel:
    """The refiner model named by ``cfg.model``; ``cond_classes`` > 0 makes its discriminators class-conditional
    (the classes come from the semantic-consistency task model attached as ``model.consistency``)."""
    if cfg.model == "cyclegan":
        return CycleGAN(cfg, channels, cond_classes)
    return CUT(cfg, channels, cond_classes)


def model_summary(model: RefinerModel) -> dict[str, Any]:
    """Parameter counts per network."""
    return {
        name: sum(p.numel() for p in child.parameters())
        for name, child in model.named_children()
        if any(True for _ in child.parameters())
    }
