"""CycleGAN/CUT/AGGAN networks: reference parameter counts, shapes at any resolution, init, PatchNCE."""

from __future__ import annotations

import pytest
import torch

from simreal.nn.gan import (
    AttentionNet,
    ImagePool,
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    count_params,
    init_weights,
)
from simreal.nn.patchnce import PatchSampleF, patch_nce_loss


def test_reference_parameter_counts() -> None:
    assert count_params(ResnetGenerator(3, 3, 64, 9)) == 11_378_179
    assert count_params(NLayerDiscriminator(3, 64, 3)) == 2_764_737
    # 6 blocks: three residual blocks (1,180,160 each) fewer
    assert count_params(ResnetGenerator(3, 3, 64, 6)) == 11_378_179 - 3 * 1_180_160
    # AGGAN attention net: about 154 k parameters
    assert 150_000 < count_params(AttentionNet(3, 32)) < 160_000


def test_patchgan_output_is_30x30_at_256() -> None:
    d = NLayerDiscriminator(3, 8, 3)
    assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    assert len(d.features(torch.zeros(1, 3, 64, 64))) == 4


@pytest.mark.parametrize("size", [(32, 32), (30, 45), (17, 23)])
def test_generators_are_fully_convolutional(size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size) * 2 - 1
    for g in (ResnetGenerator(3, 3, 4, 1), UnetGenerator(3, 3, 4, 5), ResnetGenerator(3, 3, 4, 1, skip=True)):
        y = g(x)
        assert y.shape == x.shape
        assert y.abs().max() <= 1.0
    assert AttentionNet(3, 4)(x).shape == (2, 1, *size)


def test_skip_generator_is_identity_when_residual_is_zero() -> None:
    g = ResnetGenerator(3, 3, 4, 1, skip=True)
    last = [m for m in g.model if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.rand(1, 3, 20, 20) * 2 - 1
    assert torch.equal(g(x), x)


def test_normal_init_statistics() -> None:
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(3, 3, 16, 2), "normal", 0.02)
    w = torch.cat([m.weight.detach().flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(w.mean())) < 1e-3
    assert abs(float(w.std()) - 0.02) < 1e-3
    assert all(float(m.bias.detach().abs().max()) == 0 for m in g.modules() if isinstance(m, torch.nn.Conv2d))


def test_generator_layer_features_match_channels() -> None:
    g = ResnetGenerator(3, 3, 8, 6)
    feats = g(torch.zeros(1, 3, 32, 32), [0, 4, 7, 10, 14], encode_only=True)
    assert [f.shape[1] for f in feats] == [3, 16, 32, 32, 32]
    out, feats2 = g(torch.zeros(1, 3, 32, 32), [0, 4])
    assert out.shape == (1, 3, 32, 32) and len(feats2) == 2


def test_patchnce_prefers_matching_patches() -> None:
    torch.manual_seed(0)
    feat = torch.randn(2, 8, 6, 6)
    f = PatchSampleF([8], nc=16)
    k, ids = f([feat], 16)
    q_same, _ = f([feat], 16, ids)
    q_other, _ = f([torch.randn(2, 8, 6, 6)], 16, ids)
    same = patch_nce_loss(q_same[0], k[0], 2).mean()
    other = patch_nce_loss(q_other[0], k[0], 2).mean()
    assert same < other
    assert k[0].shape == (32, 16)
    assert torch.allclose(k[0].norm(dim=1), torch.ones(32), atol=1e-5)


def test_image_pool_reference_behaviour() -> None:
    torch.manual_seed(0)
    pool = ImagePool(3)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returns new images
    out = pool.query(torch.full((20, 1, 1, 1), 9.0))
    assert set(out.flatten().tolist()) <= {0.0, 1.0, 2.0, 9.0}
    assert (out == 9.0).any() and (out != 9.0).any()
    assert ImagePool(0).query(first) is first
