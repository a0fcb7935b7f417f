import copy
from pathlib import Path

import pytest
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


def test_adda_update_matches_hand_computation() -> None:
    """One ADDA step recomputed by hand (Tzeng et al. 2017): the discriminator learns source = 0, target = 1
    on detached features; then, with the *updated* discriminator, the target encoder (only) descends the
    inverted-label loss (target features labelled 0, as source)."""
    from tests.unit.test_dann import Tiny

    torch.manual_seed(0)
    src = Tiny().eval()
    for p in src.parameters():
        p.requires_grad_(False)
    tgt = copy.deepcopy(src).train()
    for p in tgt.parameters():
        p.requires_grad_(True)
    disc = DomainDiscriminator(4, 2, (5,))
    t2, d2 = copy.deepcopy(tgt), copy.deepcopy(disc)
    lr = 0.1
    opt_d = torch.optim.SGD(disc.parameters(), lr=lr)
    opt_t = torch.optim.SGD(tgt.enc.parameters(), lr=lr)
    xs, xt = torch.randn(5, 3), torch.randn(4, 3) + 1.0
    adda_step(src, tgt, disc, xs, xt, opt_d, opt_t)

    import torch.nn.functional as F

    f_s, f_t = src.encode(xs), t2.encode(xt)
    d_loss = F.cross_entropy(d2(torch.cat([f_s, f_t.detach()])), torch.tensor([0] * 5 + [1] * 4))
    g_d = torch.autograd.grad(d_loss, list(d2.parameters()))
    with torch.no_grad():
        for p, g in zip(d2.parameters(), g_d, strict=True):
            p -= lr * g
    g_loss = F.cross_entropy(d2(f_t), torch.zeros(4, dtype=torch.long))
    g_t = torch.autograd.grad(g_loss, list(t2.enc.parameters()))
    expect_enc = [p - lr * g for p, g in zip(t2.enc.parameters(), g_t, strict=True)]
    for a, e in zip(disc.parameters(), d2.parameters(), strict=True):
        assert torch.allclose(a, e, atol=1e-6)
    for a, e in zip(tgt.enc.parameters(), expect_enc, strict=True):
        assert torch.allclose(a, e, atol=1e-6)
    for a, e in zip(tgt.fc.parameters(), t2.fc.parameters(), strict=True):  # the task head is not adapted
        assert torch.equal(a, e)


def _fit(method: MethodConfig, tmp_path: Path, steps: int = 6) -> tuple[Trainer, dict[str, torch.Tensor]]:
    """Train a small classifier (checkpointing into a run store); returns the trainer and the model state
    at the end of the pre-training phase (read from its checkpoint)."""
    from simreal.runtime.runstore import RunStore, read_tensors

    torch.manual_seed(0)
    task = ClassifyTask(2)
    xs, ys = torch.rand(20, 1, 8, 8), [i % 2 for i in range(20)]
    src = ArraySource("s", 0, xs, ys)
    tgt = ArraySource("t", 1, torch.rand(20, 1, 8, 8) + 0.5, [i % 2 for i in range(20)],
                      labelled=method.name == "finetune")
    model = task.build_model("smallcnn", 1, (8, 8), width=4)
    store, _ = RunStore.prepare(tmp_path / "run", "test", method)
    tr = Trainer(task, model, [(src, "source"), (tgt, "target")], method,
                 OptimConfig(steps=steps, batch_per_domain=4), SelectionConfig(policy="last"),
                 progress=False, store=store, checkpoint_every=steps, keep_checkpoints=10)
    tr.fit()
    ck = next(c for c in store.checkpoints() if c.step == steps)
    pre = {k[len("model."):]: v for k, v in read_tensors(ck.path).items() if k.startswith("model.")}
    return tr, pre


def test_adda_changes_the_encoder_and_keeps_the_head(tmp_path: Path) -> None:
    tr, pre = _fit(MethodConfig(name="adda", adda_steps=6, disc_hidden=[8]), tmp_path)
    post = tr.model.state_dict()
    enc = [k for k in post if k.startswith("backbone.encoder.") and post[k].is_floating_point()]
    assert enc and any(not torch.equal(post[k], pre[k]) for k in enc)
    for k in ("backbone.fc.weight", "backbone.fc.bias"):
        assert torch.equal(post[k], pre[k]), k
    # the frozen source copy is the pre-trained model
    for k, v in tr.src_model.state_dict().items():
        assert torch.equal(v, pre[k]), k


def test_finetune_resets_the_head_then_trains_on_the_target(tmp_path: Path) -> None:
    # a vanishing fine-tuning learning rate: the head can only differ from the pre-trained one by the reset
    tr, pre = _fit(MethodConfig(name="finetune", finetune_steps=2, finetune_lr_factor=1e-12), tmp_path)
    post = tr.model.state_dict()
    w = post["backbone.fc.weight"]
    assert not torch.allclose(w, pre["backbone.fc.weight"], atol=1e-3)  # re-initialised
    bound = 1.0 / w.shape[1] ** 0.5  # nn.Linear's default init range
    assert float(w.abs().max()) <= bound + 1e-6
    conv = "backbone.encoder.0.0.weight"
    assert torch.allclose(post[conv], pre[conv], atol=1e-6)  # the encoder was not reset


def test_lr_schedule_is_applied_to_the_optimiser_and_logged() -> None:
    from simreal.adapt.trainer import lr_factor

    got: list[tuple[int, float]] = []
    task = ClassifyTask(2)
    src = ArraySource("s", 0, torch.rand(16, 1, 8, 8), [i % 2 for i in range(16)])
    model = task.build_model("smallcnn", 1, (8, 8), width=4)
    steps, lr = 60, 0.01
    tr = Trainer(task, model, [(src, "source")], MethodConfig(name="source_only"),
                 OptimConfig(steps=steps, batch_per_domain=4, lr=lr, lr_schedule="dann", weight_decay=0.0),
                 SelectionConfig(policy="last"), progress=False,
                 on_log=lambda r: got.append((r["step"], r["lr"])) if "lr" in r else None)
    tr.fit()
    assert [s for s, _ in got] == [20, 40, 60]
    for step, value in got:  # the lr of the optimiser during step `step` (0-based step - 1)
        assert value == pytest.approx(lr * lr_factor("dann", step - 1, steps), rel=1e-12)
    assert got[-1][1] < 0.2 * lr  # it really decays
    assert tr.opt.param_groups[0]["lr"] == pytest.approx(lr * lr_factor("dann", steps - 1, steps))


def test_adda_selection_includes_the_unadapted_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model before the first ADDA update (the source model) is a selection candidate: when every adapted
    checkpoint scores worse on the label-free criterion, selection returns the unadapted model, not a collapsed
    one. The criterion here: minus the distance of the model from the end of pre-training, so any update is
    worse."""
    import simreal.adapt.trainer as trainer_mod
    from simreal.runtime.runstore import RunStore, read_tensors

    pre_steps = 6
    pre: dict[str, torch.Tensor] = {}

    def score(policy: str, task: object, model: torch.nn.Module, *a: object) -> float:
        state = model.state_dict()
        if not pre:  # the first evaluation of the run: record the state it is compared with
            pre.update({k: v.clone() for k, v in state.items()})
        return -sum(float((state[k].float() - v.float()).abs().sum()) for k, v in pre.items())

    monkeypatch.setattr(trainer_mod, "selection_score", score)
    torch.manual_seed(0)
    task = ClassifyTask(2)
    src = ArraySource("s", 0, torch.rand(20, 1, 8, 8), [i % 2 for i in range(20)])
    tgt = ArraySource("t", 1, torch.rand(20, 1, 8, 8) + 0.5, None, labelled=False)
    model = task.build_model("smallcnn", 1, (8, 8), width=4)
    method = MethodConfig(name="adda", adda_steps=4, adda_lr=1e-2, disc_hidden=[8])
    store, _ = RunStore.prepare(tmp_path / "run", "test", method)
    tr = Trainer(task, model, [(src, "source"), (tgt, "target")], method,
                 OptimConfig(steps=pre_steps, batch_per_domain=4), SelectionConfig(policy="source_val", eval_every=2),
                 progress=False, val=src, store=store, checkpoint_every=pre_steps, keep_checkpoints=10)
    res = tr.fit()
    evals = [r["step"] for r in res.history if r.get("eval")]
    assert evals == [pre_steps, pre_steps + 2, pre_steps + 4]  # before the first update, then every eval_every
    assert res.selection["step"] == pre_steps
    ck = next(c for c in store.checkpoints() if c.step == pre_steps)
    at_pre = {k[len("model."):]: v for k, v in read_tensors(ck.path).items() if k.startswith("model.")}
    for k, v in res.model.state_dict().items():  # the returned model is the pre-trained one
        assert torch.equal(v, at_pre[k]), k
    assert any(not torch.equal(v, at_pre[k]) for k, v in tr.model.state_dict().items()) is False
    assert tr.best["step"] == pre_steps
