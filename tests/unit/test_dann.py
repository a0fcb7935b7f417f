"""DANN: hand-recomputed update, k=2 CE vs binary form, and suppression of a domain-indicating feature."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from simreal.adapt.steps import dann_step
from simreal.datasets.torchdata import Batch
from simreal.nn.heads import DomainDiscriminator
from simreal.tasks.base import TaskModel
from simreal.tasks.classify import ClassifyTask


class Tiny(TaskModel):
    def __init__(self, d_in: int = 3, d: int = 4, k: int = 2) -> None:
        super().__init__()
        self.enc = nn.Linear(d_in, d)
        self.fc = nn.Linear(d, k)
        self.feature_dim = d

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.enc(x))

    def decode(self, enc: torch.Tensor) -> torch.Tensor:
        return self.fc(enc)

    def head_modules(self) -> list[nn.Module]:
        return [self.fc]


def _batch() -> Batch:
    torch.manual_seed(1)
    x = torch.randn(6, 3)
    return Batch(x, [0, 1, None, None, 1, None], torch.tensor([0, 0, 1, 1, 2, 2]),
                 torch.tensor([True, True, False, False, True, False]))


def test_dann_update_matches_hand_computation() -> None:
    torch.manual_seed(0)
    model, disc = Tiny(), DomainDiscriminator(4, 3, (5,))
    m2, d2 = copy.deepcopy(model), copy.deepcopy(disc)
    b, alpha, lr = _batch(), 0.3, 0.1
    opt = torch.optim.SGD(list(model.parameters()) + list(disc.parameters()), lr=lr)
    dann_step(model, disc, ClassifyTask(2), b, alpha, opt)
    # by hand: encoder gets grad(task) - alpha * grad(domain); heads get their own plain gradients
    feat = m2.encode(b.x)
    task = F.cross_entropy(m2.fc(feat)[b.labelled], torch.tensor([0, 1, 1]))
    dom = F.cross_entropy(d2(feat), b.domain)
    enc = list(m2.enc.parameters())
    g_task = torch.autograd.grad(task, enc + list(m2.fc.parameters()), retain_graph=True)
    g_dom = torch.autograd.grad(dom, enc + list(d2.parameters()))
    expect_enc = [p - lr * (gt - alpha * gd) for p, gt, gd in zip(enc, g_task[:2], g_dom[:2], strict=True)]
    expect_fc = [p - lr * g for p, g in zip(m2.fc.parameters(), g_task[2:], strict=True)]
    expect_d = [p - lr * g for p, g in zip(d2.parameters(), g_dom[2:], strict=True)]
    got = list(model.enc.parameters()) + list(model.fc.parameters()) + list(disc.parameters())
    for a, e in zip(got, expect_enc + expect_fc + expect_d, strict=True):
        assert torch.allclose(a, e, atol=1e-6)


def test_k2_cross_entropy_equals_binary_form() -> None:
    torch.manual_seed(0)
    logits = torch.randn(10, 2)
    dom = torch.randint(0, 2, (10,))
    ce = F.cross_entropy(logits, dom)
    bce = F.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], dom.float())
    assert torch.allclose(ce, bce, atol=1e-6)


def test_dann_suppresses_domain_indicating_feature() -> None:
    """Feature 0 carries the label in both domains; feature 1 is a domain indicator (0 on source, 1 on
    target) that is correlated with the label on the source only. DANN should lower its encoder weight."""

    def data(n: int, domain: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 2, (n,), generator=g)
        x0 = (y.float() * 2 - 1) + 0.8 * torch.randn(n, generator=g)
        x1 = (y.float() if domain == 0 else torch.ones(n)) * 3.0 + 0.1 * torch.randn(n, generator=g)
        return torch.stack([x0, x1], 1), y

    def train(alpha: float) -> float:
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        enc = nn.Linear(2, 1, bias=True)
        model = _Lin(enc)
        disc = DomainDiscriminator(1, 2, (8,))
        opt = torch.optim.Adam(list(model.parameters()) + list(disc.parameters()), 0.02)
        task = ClassifyTask(2)
        for _ in range(400):
            xs, ys = data(32, 0, g)
            xt, _ = data(32, 1, g)
            b = Batch(torch.cat([xs, xt]), ys.tolist() + [None] * 32, torch.tensor([0] * 32 + [1] * 32),
                      torch.tensor([True] * 32 + [False] * 32))
            dann_step(model, disc, task, b, alpha, opt)
        w = enc.weight.detach()[0]
        return float(w[1].abs() / w.abs().sum())

    assert train(1.0) < 0.5 * train(0.0)


class _Lin(TaskModel):
    def __init__(self, enc: nn.Linear) -> None:
        super().__init__()
        self.enc, self.fc, self.feature_dim = enc, nn.Linear(1, 2), 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)

    def decode(self, enc: torch.Tensor) -> torch.Tensor:
        return self.fc(enc)

    def head_modules(self) -> list[nn.Module]:
        return [self.fc]
