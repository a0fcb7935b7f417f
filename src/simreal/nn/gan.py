"""GAN networks in plain torch, following junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py``:
ResNet and U-Net generators, the PatchGAN discriminator, AGGAN attention nets, init, losses, image pool.

Every generator is fully convolutional: inputs of any size are reflection-padded to the multiple the
network needs and the output is cropped back, so a refiner trained on crops refines whole images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def instance_norm(channels: int) -> nn.Module:
    """The reference ``get_norm_layer('instance')``: no affine parameters, no running stats."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Reference init: Conv/Linear weights N(0, gain) (or xavier/kaiming/orthogonal), biases 0."""

    def init_fn(m: nn.Module) -> None:
        name = m.__class__.__name__
        if hasattr(m, "weight") and m.weight is not None and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init_type {init_type!r}")
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    net.apply(init_fn)
    return net


def count_params(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` so H and W are multiples of ``multiple``; returns (x, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class ResnetBlock(nn.Module):
    """Conv-IN-ReLU-Conv-IN with reflection padding and an additive shortcut."""

    def __init__(self, dim: int, dropout: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=True),
            instance_norm(dim),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), instance_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, R4ngf × n_blocks, u2ngf, ungf, c7s1-out, tanh (the CycleGAN generator).

    ``skip=True`` adds the input to the output (``clamp(x + tanh(.), -1, 1)``), so the net learns a
    residual. ``forward(x, layers=...)`` also returns the activations after the listed indices of
    ``self.model`` (CUT's PatchNCE layers); ``encode_only`` stops after the last listed layer.
    """

    multiple = 4

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        dropout: bool = False,
        skip: bool = False,
    ) -> None:
        super().__init__()
        self.skip = skip and in_channels == out_channels
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, padding=0, bias=True),
            instance_norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                instance_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, dropout=dropout))
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=True
                ),
                instance_norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(
        self, x: Tensor, layers: Sequence[int] = (), encode_only: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]] | list[Tensor]:
        xp, (h, w) = pad_to_multiple(x, self.multiple)
        if not layers:
            out = self.model(xp)[..., :h, :w]
            return (x + out).clamp(-1.0, 1.0) if self.skip else out
        wanted = set(layers)
        last = max(layers)
        feats: list[Tensor] = []
        out = xp
        for i, layer in enumerate(self.model):
            out = layer(out)
            if i in wanted:
                feats.append(out)
            if encode_only and i == last:
                return feats
        out = out[..., :h, :w]
        if self.skip:
            out = (x + out).clamp(-1.0, 1.0)
        return out, feats


class UnetSkipBlock(nn.Module):
    """One U-Net level: down, (sub-level), up, concatenated with its input (except the outermost)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=True)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), instance_norm(inner_nc)
        uprelu, upnorm = nn.ReLU(True), instance_norm(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=True)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=True)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*[m for m in model if m is not None])

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The reference U-Net generator with ``num_downs`` levels (input sides padded to 2**num_downs)."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        num_downs: int = 7,
        dropout: bool = False,
        skip: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError("U-Net needs num_downs >= 5")
        self.multiple = 2**num_downs
        self.skip = skip and in_channels == out_channels
        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, dropout=dropout)
        block = UnetSkipBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetSkipBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetSkipBlock(ngf, ngf * 2, submodule=block)
        self.model = UnetSkipBlock(out_channels, ngf, input_nc=in_channels, submodule=block, outermost=True)

    def forward(self, x: Tensor, layers: Sequence[int] = (), encode_only: bool = False) -> Tensor:
        if layers:
            raise ValueError("the U-Net generator exposes no PatchNCE layers; use a resnet generator for CUT")
        xp, (h, w) = pad_to_multiple(x, self.multiple)
        out = self.model(xp)[..., :h, :w]
        return (x + out).clamp(-1.0, 1.0) if self.skip else out


class NLayerDiscriminator(nn.Module):
    """PatchGAN: C64 (no norm) then C128..C512 with instance norm, LeakyReLU 0.2, 4×4 kernels, 1-ch map.

    ``n_layers=3`` is the 70×70 PatchGAN. ``norm_enabled`` can be switched off at run time (AGGAN
    after its switch epoch). :meth:`features` returns the activation after each LeakyReLU.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        self.norm_enabled = True
        seq: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True),
                instance_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
            instance_norm(ndf * mult),
            nn.LeakyReLU(0.2, True),
        ]
        seq.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*seq)

    def _run(self, x: Tensor, collect: bool) -> tuple[Tensor, list[Tensor]]:
        feats: list[Tensor] = []
        for layer in self.model:
            if isinstance(layer, nn.InstanceNorm2d) and not self.norm_enabled:
                continue
            x = layer(x)
            if collect and isinstance(layer, nn.LeakyReLU):
                feats.append(x)
        return x, feats

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x, False)[0]

    def features(self, x: Tensor) -> list[Tensor]:
        """Activations after each LeakyReLU (n_layers + 1 of them), shallow to deep."""
        return self._run(x, True)[1]


class AttentionNet(nn.Module):
    """AGGAN's attention network (``autoenc_upsample``): a 1-channel sigmoid mask at input resolution."""

    multiple = 4

    def __init__(self, in_channels: int = 3, nf: int = 32) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, nf, 7, stride=2),
            instance_norm(nf),
            nn.ReLU(True),
            nn.Conv2d(nf, nf * 2, 3, stride=2, padding=1),
            instance_norm(nf * 2),
            nn.ReLU(True),
            ResnetBlock(nf * 2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(nf * 2, nf * 2, 3, padding=1),
            instance_norm(nf * 2),
            nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(nf * 2, nf, 3, padding=1),
            instance_norm(nf),
            nn.ReLU(True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(nf, 1, 7),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        xp, (h, w) = pad_to_multiple(x, 8)
        out = self.model(xp)
        if out.shape[-2:] != xp.shape[-2:]:
            out = F.interpolate(out, size=xp.shape[-2:], mode="nearest")
        return out[..., :h, :w]


def build_generator(
    kind: str,
    in_channels: int,
    out_channels: int,
    ngf: int,
    n_blocks: int = 9,
    unet_downs: int = 7,
    dropout: bool = False,
    skip: bool = False,
) -> nn.Module:
    """``kind`` is "resnet" (n_blocks residual blocks) or "unet" (unet_downs levels)."""
    if kind == "resnet":
        return ResnetGenerator(in_channels, out_channels, ngf, n_blocks, dropout, skip)
    if kind == "unet":
        return UnetGenerator(in_channels, out_channels, ngf, unet_downs, dropout, skip)
    raise ValueError(f"unknown generator {kind!r}")


class GANLoss(nn.Module):
    """LSGAN (MSE to 1/0) or vanilla (BCE with logits) loss against a constant target."""

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"unknown gan_mode {mode!r}")
        self.mode = mode

    def forward(self, pred: Tensor, target_is_real: bool) -> Tensor:
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        if self.mode == "lsgan":
            return F.mse_loss(pred, target)
        return F.binary_cross_entropy_with_logits(pred, target)


class ImagePool:
    """The reference history buffer: until full, return the new image; then with probability 0.5
    swap it with a stored one. Uses torch's global generator (seeded per iteration by the trainer)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(())) > 0.5:
                idx = int(torch.randint(0, self.size, ()))
                old = self.images[idx].clone()
                self.images[idx] = image.clone()
                out.append(old)
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state(self) -> Tensor | None:
        """All stored images as one tensor (or None when empty), for checkpoints."""
        if not self.images or len({tuple(t.shape) for t in self.images}) != 1:
            return None
        return torch.cat(self.images, 0)

    def load(self, stored: Tensor | None) -> None:
        self.images = [] if stored is None else [t.unsqueeze(0).clone() for t in stored]


def patch_instance_norm_keys(state: dict[str, Tensor], net: nn.Module) -> dict[str, Tensor]:
    """Drop ``running_mean``/``running_var``/``num_batches_tracked`` of InstanceNorm layers that keep no
    running statistics: checkpoints saved by the 2018 reference code (PyTorch < 0.4) carry them, and the
    reference's ``__patch_instance_norm_state_dict`` deletes them the same way before loading."""
    inorm = {name for name, m in net.named_modules()
             if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats}
    out = {}
    for k, v in state.items():
        owner, _, leaf = k.rpartition(".")
        if owner in inorm and leaf in ("running_mean", "running_var", "num_batches_tracked"):
            continue
        out[k] = v
    return out
