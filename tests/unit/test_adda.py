import copy

import torch

from simreal.adapt.config import MethodConfig, OptimConfig, SelectionConfig
from simreal.adapt.steps import adda_step
from simreal.adapt.trainer import Trainer
from simreal.datasets.torchdata import ArraySource
from simreal.nn.heads import DomainDiscriminator
from simreal.tasks.classify import ClassifyTask


def test_adda_step_leaves_source_encoder_unchanged_and_moves_target() -> None:
    torch.manual_seed(0)
    task = ClassifyTask(3)
    src = task.build_model("smallcnn", 1, (8, 8), width=4).eval()
    for p in src.parameters():
        p.requires_grad_(False)
    tgt = copy.deepcopy(src).train()
    for p in tgt.parameters():
        p.requires_grad_(True)
    before_src = copy.deepcopy(src.state_dict())
    before_tgt = copy.deepcopy(tgt.state_dict())
    disc = DomainDiscriminator(src.feature_dim, 2, (8,))
    opt_d = torch.optim.Adam(disc.parameters(), 1e-2)
    opt_t = torch.optim.Adam(tgt.backbone.encoder.parameters(), 1e-2)
    adda_step(src, tgt, disc, torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8) + 1, opt_d, opt_t)
    for k, v in src.state_dict().items():
        assert torch.equal(v, before_src[k]), k
    assert any(not torch.equal(v, before_tgt[k]) for k, v in tgt.state_dict().items() if "encoder" in k)
    assert all(torch.equal(v, before_tgt[k]) for k, v in tgt.state_dict().items() if k.startswith("backbone.fc"))


def test_adda_trainer_keeps_frozen_source_copy() -> None:
    torch.manual_seed(0)
    task = ClassifyTask(2)
    xs, ys = torch.rand(20, 1, 8, 8), [i % 2 for i in range(20)]
    src = ArraySource("s", 0, xs, ys)
    tgt = ArraySource("t", 1, torch.rand(20, 1, 8, 8) + 0.5, None, labelled=False)
    model = task.build_model("smallcnn", 1, (8, 8), width=4)
    tr = Trainer(task, model, [(src, "source"), (tgt, "target")], MethodConfig(name="adda", adda_steps=5,
                 disc_hidden=[8]), OptimConfig(steps=5, batch_per_domain=4), SelectionConfig(policy="last"),
                 progress=False)
    tr.fit()
    assert tr.src_model is not None
    assert not any(p.requires_grad for p in tr.src_model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(tr.src_model.state_dict().values(),
                                                     model.state_dict().values(), strict=True))
