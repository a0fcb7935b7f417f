"""Device resolution without a GPU: auto/cpu/explicit; a device that is absent or malformed is a
ConfigError (one line, exit 2 in the CLI)."""

from __future__ import annotations

import pytest
import torch

from simreal.errors import ConfigError
from simreal.runtime.device import resolve_device


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu") or resolve_device("auto").type == "mps"
    else:
        assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "tpu", ""])
def test_malformed(spec: str) -> None:
    if spec == "":
        assert resolve_device(spec) is not None  # empty means auto
        return
    with pytest.raises(ConfigError, match="not a device"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_absent_cuda(spec: str) -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device(spec, where="train --device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_out_of_range() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_forked_rng_restores_the_cpu_stream() -> None:
    from simreal.runtime.device import forked_rng

    torch.manual_seed(3)
    want = torch.rand(4)
    torch.manual_seed(3)
    with forked_rng(torch.device("cpu")):
        torch.manual_seed(99)
        torch.rand(10)
    assert torch.equal(torch.rand(4), want)


@pytest.mark.parametrize("kind", ["mps", "cuda"])
def test_forked_rng_saves_and_restores_the_accelerator_stream(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the accelerator here, its module's get/set_rng_state are replaced by a recorder: the fork
    must read the state of exactly the run's device before and write it back after (the bug fixed: MPS
    was not forked at all, so an in-memory refiner on a Mac reseeded the caller's MPS stream)."""
    from simreal.runtime.device import forked_rng

    mod = torch.get_device_module(kind)
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(mod, "get_rng_state", lambda device=kind: calls.append(("get", str(device))) or
                        torch.tensor([7], dtype=torch.uint8))
    monkeypatch.setattr(mod, "set_rng_state", lambda state, device=kind: calls.append(("set", str(device))))
    dev = torch.device(kind, 0) if kind == "cuda" else torch.device(kind)
    with forked_rng(dev):
        assert calls == [("get", str(dev))]
    assert calls == [("get", str(dev)), ("set", str(dev))]
