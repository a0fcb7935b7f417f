"""Data-parallel building blocks on the CPU: sharded domain-balanced batches are the single-process batch
split by rank (identity groups whole), shard checks name the key, and BatchNorm synchronised over 2 gloo
processes equals BatchNorm over the whole batch (outputs, gradients, running statistics)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
from simreal.adapt.trainer import Trainer
from simreal.datasets.augment import AugmentConfig, Augmenter
from simreal.datasets.pk_sampler import PKSource
from simreal.datasets.torchdata import ArraySource, balanced_batch
from simreal.errors import ConfigError
from simreal.runtime.compute import Compute
from simreal.runtime.distributed import DistInfo, from_env, shard, shard_size
from simreal.tasks.classify import ClassifyTask


def _sources() -> list[ArraySource]:
    g = torch.Generator().manual_seed(0)
    return [ArraySource("a", 0, torch.rand(30, 1, 4, 4, generator=g), list(range(30))),
            ArraySource("b", 1, torch.rand(20, 1, 4, 4, generator=g), None, labelled=False)]


@pytest.mark.parametrize("world", [2, 4])
def test_rank_batches_are_the_single_batch_split(world: int) -> None:
    """Also with augmentation: each rank's rows are augmented as in the single-process batch (the draws are
    made for the global batch), not with a fresh draw per shard."""
    src = _sources()
    for s in src:
        s.augment = Augmenter(AugmentConfig(hflip=0.5, brightness=0.3, contrast=0.3))
    full = balanced_batch(src, step=7, seed=3, per_domain=8)
    parts = [balanced_batch(src, 7, 3, 8, shard=(r, world)) for r in range(world)]
    own = 8 // world
    for d in range(len(src)):  # each rank holds its contiguous share of every domain's draw
        block = slice(d * 8, (d + 1) * 8)
        got = torch.cat([p.x[d * own:(d + 1) * own] for p in parts])
        assert torch.equal(got, full.x[block])
        assert [t for p in parts for t in p.targets[d * own:(d + 1) * own]] == full.targets[block]
        assert all(bool((p.domain[d * own:(d + 1) * own] == d).all()) for p in parts)
    assert torch.equal(torch.cat([p.labelled for p in parts]).sort().values, full.labelled.sort().values)
    with pytest.raises(ValueError, match="not divisible"):
        balanced_batch(src, 7, 3, 6, shard=(0, 4))


def test_identity_groups_stay_whole_on_each_rank() -> None:
    base = ArraySource("p", 0, torch.zeros(40, 1, 2, 2), list(range(40)))
    pk = PKSource(base, [i // 5 for i in range(40)], k=4)  # 8 identities of 5 images
    full = balanced_batch([pk], 2, 0, 16)
    for r in range(2):
        ids = [t // 5 for t in balanced_batch([pk], 2, 0, 16, shard=(r, 2)).targets]
        assert ids == [t // 5 for t in full.targets][r * 8:(r + 1) * 8]
        assert all(len(set(ids[i:i + 4])) == 1 for i in range(0, 8, 4))


def test_shard_checks_name_the_key() -> None:
    assert shard_size(12, DistInfo(1, 3), "optim.batch_per_domain") == 4
    assert shard(list(range(12)), DistInfo(1, 3)) == [4, 5, 6, 7]
    with pytest.raises(ConfigError, match="optim.batch_per_domain: 7 is not divisible by the 2 processes"):
        Trainer(ClassifyTask(2), ClassifyTask(2).build_model("smallcnn", 1, (4, 4), width=4),
                [(s, "source") for s in _sources()[:1]], MethodConfig(), OptimConfig(batch_per_domain=7),
                SelectionConfig(policy="last"), compute=Compute(dist=DistInfo(0, 2)))
    base = ArraySource("p", 0, torch.zeros(40, 1, 4, 4), [i % 2 for i in range(40)])
    pk = PKSource(base, [i // 5 for i in range(40)], k=4)
    with pytest.raises(ConfigError, match="takes 6 images per domain, not a multiple of the 4 images per identity"):
        Trainer(ClassifyTask(2), ClassifyTask(2).build_model("smallcnn", 1, (4, 4), width=4), [(pk, "source")],
                MethodConfig(), OptimConfig(batch_per_domain=12), SelectionConfig(policy="last"),
                compute=Compute(dist=DistInfo(0, 2)))


def test_environment_of_a_torchrun_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert from_env() == DistInfo(2, 4, 0) and not from_env().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4 WORLD_SIZE=4"):
        from_env()
    from simreal.runtime.distributed import launch

    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match="already one of a torchrun job"):
        launch(["train"], 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sync_bn_worker(rank: int, world: int, port: int, x: torch.Tensor, c: torch.Tensor, cuts: list[int],
                    out: dict) -> None:
    import torch.distributed as dist

    from simreal.nn.syncbn import convert_sync_batchnorm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        net = convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)), torch.device("cpu"))
        net[0].weight.data.uniform_(0.5, 1.5)
        net[0].bias.data.uniform_(-0.5, 0.5)
        lo, hi = cuts[rank], cuts[rank + 1]
        xr = x[lo:hi].clone().requires_grad_(True)
        y = net(xr)
        (y * c[lo:hi]).sum().backward()
        gw, gb = net[0].weight.grad.clone(), net[0].bias.grad.clone()
        dist.all_reduce(gw)  # the gradient of the summed loss (DDP averages; the sum compares exactly)
        dist.all_reduce(gb)
        out[rank] = {"y": y.detach(), "gx": xr.grad, "gw": gw, "gb": gb, "rm": net[0].running_mean.clone(),
                     "rv": net[0].running_var.clone()}
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("cuts", [[0, 4, 8], [0, 3, 8]], ids=["equal shards", "unequal shards"])
def test_portable_sync_batchnorm_equals_batchnorm_over_the_global_batch(cuts: list[int]) -> None:
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(8, 3, 5, 5, generator=g) * 3 + 1, torch.randn(8, 3, 5, 5, generator=g)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        out = manager.dict()
        mp.start_processes(_sync_bn_worker, args=(2, _free_port(), x, c, cuts, out), nprocs=2,
                           start_method="spawn")
        res = dict(out)
    torch.manual_seed(0)
    ref = torch.nn.BatchNorm2d(3)
    ref.weight.data.uniform_(0.5, 1.5)
    ref.bias.data.uniform_(-0.5, 0.5)
    xf = x.clone().requires_grad_(True)
    y = ref(xf)
    (y * c).sum().backward()
    assert torch.allclose(torch.cat([res[0]["y"], res[1]["y"]]), y.detach(), atol=1e-5)
    assert torch.allclose(torch.cat([res[0]["gx"], res[1]["gx"]]), xf.grad, atol=1e-5)
    for r in (0, 1):
        assert torch.allclose(res[r]["gw"], ref.weight.grad, atol=1e-4)
        assert torch.allclose(res[r]["gb"], ref.bias.grad, atol=1e-4)
        assert torch.allclose(res[r]["rm"], ref.running_mean, atol=1e-6)
        assert torch.allclose(res[r]["rv"], ref.running_var, atol=1e-5)
    # per-rank statistics (plain BatchNorm in each process) would differ: the test can tell them apart
    half = torch.nn.BatchNorm2d(3)
    half.load_state_dict({k: v for k, v in ref.state_dict().items() if "running" not in k and "num" not in k},
                         strict=False)
    assert not np.allclose(half(x[:4]).detach().numpy(), y.detach()[:4].numpy(), atol=1e-3)
