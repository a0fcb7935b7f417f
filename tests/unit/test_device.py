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
