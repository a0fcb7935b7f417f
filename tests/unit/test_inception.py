"""FID Inception-v3 (pytorch-fid layout): state dicts load by reference key names; clear errors."""

from __future__ import annotations

import pytest
import torch

from simreal.errors import WeightsError
from simreal.metrics.features import extract_features, make_extractor
from simreal.nn.inception import FIDInceptionE, FIDInceptionV3, load_fid_inception


def test_reference_key_names_and_blocks() -> None:
    sd = FIDInceptionV3().state_dict()
    for key in (
        "Conv2d_1a_3x3.conv.weight",
        "Conv2d_1a_3x3.bn.running_var",
        "Mixed_5b.branch_pool.conv.weight",
        "Mixed_6e.branch7x7dbl_5.bn.bias",
        "Mixed_7c.branch3x3dbl_3b.conv.weight",
        "fc.weight",
    ):
        assert key in sd
    assert sd["fc.weight"].shape == (1008, 2048)
    m = FIDInceptionV3()
    assert not m.Mixed_7b.max_pool and m.Mixed_7c.max_pool


def test_e2_block_max_pools_its_pool_branch() -> None:
    torch.manual_seed(0)
    e1, e2 = FIDInceptionE(8, max_pool=False).eval(), FIDInceptionE(8, max_pool=True).eval()
    e2.load_state_dict(e1.state_dict())
    x = torch.rand(1, 8, 5, 5)
    a, b = e1(x), e2(x)
    assert torch.equal(a[:, :-192], b[:, :-192])  # only the pool branch (last 192 channels) differs
    assert not torch.equal(a[:, -192:], b[:, -192:])


def test_round_trip_of_a_saved_state_dict(tmp_path) -> None:
    torch.manual_seed(0)
    ref = FIDInceptionV3(dims=192)
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(sd, path)
    loaded = load_fid_inception(path, dims=192)
    x = torch.rand(2, 3, 40, 50)
    with torch.no_grad():
        assert torch.allclose(loaded(x), ref.eval()(x))
    assert loaded(x).shape == (2, 192)
    ext = make_extractor("inception", path, dims=64)
    feats = extract_features([torch.randint(0, 255, (20, 30, 3), dtype=torch.uint8).numpy()] * 3, ext)
    assert feats.shape == (3, 64)


def test_missing_and_mismatched_weights(tmp_path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_fid_inception(tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="--weights"):
        make_extractor("inception", None)
    sd = FIDInceptionV3().state_dict()
    del sd["Mixed_6a.branch3x3.conv.weight"]
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="missing"):
        load_fid_inception(tmp_path / "partial.pth")
    sd = FIDInceptionV3().state_dict()
    sd["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(sd, tmp_path / "shape.pth")
    with pytest.raises(WeightsError, match="shape"):
        load_fid_inception(tmp_path / "shape.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="cannot read"):
        load_fid_inception(tmp_path / "junk.pth")
