import math

import torch

from simreal.nn.grl import GradientReversal, grad_reverse, grl_coefficient


def test_grl_forward_identity_backward_minus_alpha() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    g = torch.randn(4, 3)
    y = grad_reverse(x, 0.37)
    assert torch.equal(y, x)
    y.backward(g)
    assert torch.allclose(x.grad, -0.37 * g)
    m = GradientReversal(2.0)
    x2 = torch.randn(2, requires_grad=True)
    m(x2).sum().backward()
    assert torch.allclose(x2.grad, torch.full((2,), -2.0))


def test_schedules() -> None:
    assert grl_coefficient(0, 100, "dann") == 0.0
    assert abs(grl_coefficient(100, 100, "dann") - (2 / (1 + math.exp(-10)) - 1)) < 1e-12
    assert grl_coefficient(50, 100, "dann", alpha=0.5) == 0.5 * (2 / (1 + math.exp(-5)) - 1)
    assert grl_coefficient(7, 100, "constant", alpha=0.05) == 0.05
