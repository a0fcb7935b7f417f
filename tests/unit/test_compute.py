"""Compute (device, precision, loss scaling) without a GPU: mixed precision really runs in bfloat16/float16
on the CPU, the float16 loss scaler skips steps with inf gradients and survives a checkpoint, bad settings
are one-line ConfigErrors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simreal.config import ComputeSettings, load_config
from simreal.errors import ConfigError
from simreal.runtime.compute import Compute, check_precision


def test_cpu_float32_is_plain() -> None:
    ctx = Compute.create("cpu")
    assert ctx.device == torch.device("cpu") and ctx.precision == "32" and ctx.scaler is None
    assert not ctx.dist.active and ctx.is_main and not ctx.pin_memory
    lin = nn.Linear(4, 3)
    with ctx.autocast():
        assert lin(torch.randn(2, 4)).dtype == torch.float32


@pytest.mark.parametrize("precision,dtype", [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)])
def test_autocast_computes_in_low_precision(precision: str, dtype: torch.dtype) -> None:
    ctx = Compute.create("cpu", precision)
    lin = nn.Linear(4, 3)
    with ctx.autocast():
        y = lin(torch.randn(2, 4))
    assert y.dtype == dtype  # the matmul ran in low precision; the weights stay float32
    assert lin.weight.dtype == torch.float32
    assert (ctx.scaler is not None) == (precision == "16-mixed")


def test_loss_scaler_skips_a_step_with_inf_gradients_and_lowers_the_scale() -> None:
    ctx = Compute.create("cpu", "16-mixed")
    lin = nn.Linear(2, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    scale0 = ctx.scaler.get_scale()
    before = lin.weight.detach().clone()
    with ctx.autocast():
        loss = lin(torch.tensor([[float("inf"), 1.0]])).float().sum()
    opt.zero_grad()
    ctx.backward(loss)
    ctx.step(opt)
    ctx.update()
    assert torch.equal(lin.weight, before)  # skipped
    assert ctx.scaler.get_scale() == scale0 * 0.5
    with ctx.autocast():
        loss = lin(torch.ones(1, 2)).float().sum()
    opt.zero_grad()
    ctx.backward(loss)
    assert torch.allclose(lin.weight.grad, torch.full((1, 2), ctx.scaler.get_scale()))  # scaled gradient
    ctx.step(opt)
    ctx.update()
    assert torch.allclose(lin.weight, before - 0.1, atol=1e-6)  # unscaled before the step: d(sum)/dw = 1


def test_scaler_state_round_trips_through_checkpoint_tensors() -> None:
    a = Compute.create("cpu", "16-mixed")
    assert float(a.state_tensors()["amp.scale"]) == 2.0**16  # the initial scale
    a.load_state_tensors({"amp.scale": torch.tensor(1234.0), "amp.growth_tracker": torch.tensor(7)})
    st = a.state_tensors()
    assert set(st) == {"amp.scale", "amp.growth_tracker"} and all(t.device.type == "cpu" for t in st.values())
    b = Compute.create("cpu", "16-mixed")
    b.load_state_tensors(st)
    assert b.scaler.get_scale() == 1234.0 and b.scaler.state_dict()["_growth_tracker"] == 7
    assert Compute.create("cpu").state_tensors() == {}
    Compute.create("cpu").load_state_tensors(st)  # a float32 run resumes from a 16-mixed checkpoint


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="not a precision"):
        check_precision("fp8")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            Compute.create("cuda")
    with pytest.raises(ConfigError, match="device: 'gpu' is not a device"):
        load_config(ComputeSettings, {"device": "gpu"})
    cfg = load_config(ComputeSettings, {"precision": 32, "device": "CPU"})
    assert cfg.precision == "32" and cfg.device == "cpu"  # YAML's integer 32 and any case are accepted


def test_float16_on_the_cpu_warns_once_and_bf16_does_not(capsys: pytest.CaptureFixture[str]) -> None:
    from simreal.runtime.compute import Compute

    Compute.create("cpu", "16-mixed")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "16-mixed" in err and "bf16-mixed" in err
    Compute.create("cpu", "bf16-mixed")
    Compute.create("cpu", "32")
    assert capsys.readouterr().err == ""


def test_channels_last_places_conv_weights_nhwc_and_trains_the_same_model() -> None:
    """``channels_last`` changes the memory layout only: the same DANN run (convolutions, a multi-level patch
    discriminator, Adam) ends at the same weights to float rounding, and its conv weights really are NHWC."""
    from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
    from simreal.adapt.trainer import Trainer
    from simreal.datasets.torchdata import ArraySource
    from simreal.tasks.classify import ClassifyTask

    g = torch.Generator().manual_seed(0)
    x_s, x_t = torch.rand(24, 3, 16, 16, generator=g), torch.rand(16, 3, 16, 16, generator=g)
    method = MethodConfig.model_validate({"name": "dann", "levels": [{"name": "stage2"}, {"name": "pooled"}]})
    out = []
    for cl in (False, True):
        torch.manual_seed(0)
        task = ClassifyTask(2)
        model = task.build_model("smallcnn", 3, (16, 16), width=8)
        sources = [(ArraySource("s", 0, x_s, [i % 2 for i in range(24)]), "source"),
                   (ArraySource("t", 1, x_t, None, labelled=False), "target")]
        tr = Trainer(task, model, sources, method, OptimConfig(steps=8, batch_per_domain=4),
                     SelectionConfig(policy="last"), seed=1, progress=False,
                     compute=Compute.create("cpu", channels_last=cl))
        convs = [m.weight for m in tr.model.modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(w.is_contiguous(memory_format=torch.channels_last) == cl for w in convs
                             if w.shape[-1] > 1)  # a 1x1 kernel is both layouts at once
        out.append({k: v.clone() for k, v in tr.fit().model.state_dict().items()})
    assert out[0].keys() == out[1].keys()
    for k in out[0]:
        torch.testing.assert_close(out[1][k], out[0][k], rtol=1e-4, atol=1e-5, msg=k)
    assert ComputeSettings().channels_last is False
    assert load_config(ComputeSettings, {"channels_last": True}).channels_last
