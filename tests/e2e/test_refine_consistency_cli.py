"""``simreal train`` a source classifier, then ``simreal refine train`` with semantic consistency against it and
task-space FID/KID at every checkpoint; bad consistency configs fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simreal.cli.main import main

from .test_train_cli import _config, _folder

REFINER = """net: {ngf: 4, ndf: 4, n_blocks: 1, n_layers_d: 1}
data: {crop_size: 16, flip: false}
train: {epochs: 1, epochs_decay: 1, batch_size: 4, iterations_per_epoch: 3, num_samples: 0, log_every: 1}
"""


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("sc")
    syn = _folder(t / "syn", ["a", "b"], 12, 0.0, 1)
    real = _folder(t / "real", ["a", "b"], 10, 0.2, 2, labelled=False)
    run = t / "source-run"
    assert main(["train", "--config", str(_config(t, "source_only", syn, real)), "--out", str(run), "-q"]) == 0
    (t / "refiner.yaml").write_text(REFINER)
    return {"root": t, "syn": syn, "real": real, "run": run, "cfg": t / "refiner.yaml"}


@pytest.mark.parametrize("model", ["cyclegan", "cut"])
def test_refine_with_semantic_consistency(source_run: dict[str, Path], model: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    s = source_run
    out = s["root"] / f"refine-{model}"
    args = ["refine", "train", "--source", str(s["syn"]), "--target", str(s["real"]), "--config", str(s["cfg"]),
            "--out", str(out), "-q", "--set", f"model={model}", "--set", f"consistency.run={s['run']}",
            "--set", "consistency.weight=1.0", "--set", "consistency.fid_images=16"]
    if model == "cut":
        args += ["--set", "cut.num_patches=8", "--set", "cut.nce_layers=[0,4,7]"]
    assert main(args) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "G" in r]
    assert all("sem_A" in r and r["sem_A"] >= 0 for r in losses)
    assert all(("sem_B" in r) == (model == "cyclegan") for r in losses)  # CUT has no backward translation
    scores = [r for r in rows if "task_fid" in r]
    assert [r["epoch"] for r in scores] == [1, 2] and all(r["task_fid"] >= 0 and "task_kid" in r for r in scores)
    meta = json.loads(sorted((out / "checkpoints").glob("*.json"))[-1].read_text())
    assert meta["task_fid"] == pytest.approx(scores[-1]["task_fid"])  # the checkpoint carries its score
    log = (out / "log.txt").read_text()
    assert "semantic consistency: classify model" in log and "source labels" in log  # folder classes used
    assert "scores of the unrefined source samples: task_fid=" in log


def test_inception_fid_per_checkpoint_without_a_task_model(source_run: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``consistency.inception_weights`` scores every checkpoint in Inception's feature space (here a randomly
    initialised FID Inception saved in pytorch-fid's layout, first block: dims 64); a bad file fails in one line
    before anything is written."""
    import torch

    from simreal.nn.inception import FIDInceptionV3

    torch.manual_seed(0)
    weights = tmp_path / "pt_inception-test.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    s = source_run
    base = ["refine", "train", "--source", str(s["syn"]), "--target", str(s["real"]), "--config", str(s["cfg"]),
            "-q", "--set", "consistency.fid_images=8", "--set", "consistency.inception_dims=64"]
    out = tmp_path / "refine-inception"
    assert main([*base, "--out", str(out), "--set", f"consistency.inception_weights={weights}"]) == 0, \
        capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scores = [r for r in rows if "inception_fid" in r]
    assert [r["epoch"] for r in scores] == [1, 2] and all("task_fid" not in r for r in rows)
    assert all(r["inception_fid"] > 0 and "inception_kid" in r for r in scores)
    meta = json.loads(sorted((out / "checkpoints").glob("*.json"))[-1].read_text())
    assert meta["inception_fid"] == pytest.approx(scores[-1]["inception_fid"])
    assert "scores of the unrefined source samples: inception_fid=" in (out / "log.txt").read_text()
    capsys.readouterr()
    bad = tmp_path / "refine-bad-weights"
    assert main([*base, "--out", str(bad), "--set", f"consistency.inception_weights={tmp_path / 'nope.pth'}"]) == 2
    err = capsys.readouterr().err
    assert "nope.pth" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()


def test_refine_with_class_conditional_discriminators(source_run: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``consistency.conditional_discriminator``: the checkpoint's discriminators take the image plus one map per
    class of the task run (2 here), the run records it in its architecture, and it trains and resumes like any."""
    from safetensors.torch import load_file

    s = source_run
    out = s["root"] / "refine-cond"
    args = ["refine", "train", "--source", str(s["syn"]), "--target", str(s["real"]), "--config", str(s["cfg"]),
            "--out", str(out), "-q", "--set", f"consistency.run={s['run']}", "--set", "consistency.weight=1.0",
            "--set", "consistency.fid_images=0", "--set", "consistency.conditional_discriminator=true"]
    assert main(args) == 0, capsys.readouterr().err
    ck = sorted((out / "checkpoints").glob("*.safetensors"))[-1]
    tensors = load_file(str(ck))
    first = {k: v.shape for k, v in tensors.items() if k.endswith("model.0.weight") and ".D_" in f".{k}"}
    assert first and all(shape[1] == 3 + 2 for shape in first.values()), first  # RGB + 2 class maps
    meta = json.loads(ck.with_suffix(".json").read_text())
    assert meta["architecture"]["conditional_discriminator"] is True
    assert "class-conditional discriminators" in (out / "log.txt").read_text()
    # the generator alone refines: apply needs no task model
    assert main(["refine", "apply", "--run", str(out), "--source", str(s["syn"]), "--out",
                 str(s["root"] / "refined-cond"), "-q"]) == 0, capsys.readouterr().err


def test_bad_consistency_config_one_line(source_run: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    s = source_run
    base = ["refine", "train", "--source", str(s["syn"]), "--target", str(s["real"]), "--config", str(s["cfg"]),
            "-q"]
    capsys.readouterr()
    assert main([*base, "--out", str(s["root"] / "bad1"), "--set", "consistency.weight=1"]) == 2
    err = capsys.readouterr().err
    assert "consistency.run" in err and "Traceback" not in err
    assert main([*base, "--out", str(s["root"] / "bad2"), "--set", f"consistency.run={s['syn']}",
                 "--set", "consistency.weight=1"]) == 2
    err = capsys.readouterr().err
    assert str(s["syn"]) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (s["root"] / "bad2").exists()  # nothing written before the task model is loaded


def test_train_on_refined_domain_with_dann_in_one_config(source_run: dict[str, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """CyCADA's pixel + feature recipe: `data.domains[].refiner` refines the source as it is loaded, DANN aligns."""
    import torch

    from simreal.adapt.api import build_data
    from simreal.adapt.config import TrainConfig
    from simreal.config import load_config
    from simreal.datasets import Dataset
    from simreal.datasets.imageio import resize_image
    from simreal.datasets.torchdata import to_tensor
    from simreal.refine.run import image_refiner

    from .test_train_cli import _config

    s = source_run
    ref = s["root"] / "refiner-for-train"
    assert main(["refine", "train", "--source", str(s["syn"]), "--target", str(s["real"]), "--config",
                 str(s["cfg"]), "--out", str(ref), "-q", "--set", f"consistency.run={s['run']}",
                 "--set", "consistency.weight=1.0", "--set", "consistency.fid_images=0"]) == 0
    (s["root"] / "cy").mkdir()
    cfg_path = _config(s["root"] / "cy", "dann", s["syn"], s["real"])
    text = cfg_path.read_text().replace("role: source}", f"role: source, refiner: {ref}}}")
    cfg_path.write_text(text)
    cfg = load_config(TrainConfig, cfg_path)
    _, sources, val, _ = build_data(cfg)
    src = sources[0][0]
    assert src.transform is not None and val is not None and val.transform is not None
    ds = Dataset.open(s["syn"])
    raw = ds.load_image(ds.record(src.indices[0]), "RGB")
    expected = resize_image(image_refiner(ref, 3)(raw), (16, 16))
    got = src.get([0])[0][0]
    assert torch.allclose(got, to_tensor(expected))  # refined at full resolution, then resized
    assert not torch.allclose(got, to_tensor(resize_image(raw, (16, 16))), atol=1e-3)
    run = s["root"] / "cycada-dann"
    assert main(["train", "--config", str(cfg_path), "--out", str(run), "-q"]) == 0, capsys.readouterr().err
    assert (run / "run.json").is_file()
    # CyCADA's feature stage from the model trained on the refined source (docs/refine.md): `model.weights` loads
    # that run's whole task model, so with a vanishing learning rate DANN ends where that model ended
    from safetensors.torch import load_file

    (s["root"] / "cy-src").mkdir()
    src_cfg = _config(s["root"] / "cy-src", "source_only", s["syn"], s["real"])
    src_cfg.write_text(src_cfg.read_text().replace("role: source}", f"role: source, refiner: {ref}}}"))
    on_refined = s["root"] / "on-refined"
    assert main(["train", "--config", str(src_cfg), "--out", str(on_refined), "-q"]) == 0
    start = on_refined / "checkpoints" / "final.safetensors"
    staged = s["root"] / "cycada-dann-staged"
    assert main(["train", "--config", str(cfg_path), "--out", str(staged), "-q", "--set", f"model.weights={start}",
                 "--set", "optim.lr=1e-12"]) == 0, capsys.readouterr().err
    a, b = load_file(start), load_file(staged / "checkpoints" / "final.safetensors")
    scratch = load_file(run / "checkpoints" / "final.safetensors")
    params = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert params and set(a) == set(b)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in params)
    assert not all(torch.allclose(a[k], scratch[k], atol=1e-3) for k in params)
    capsys.readouterr()
    cfg_path.write_text(text.replace(str(ref), str(s["syn"])))
    assert main(["train", "--config", str(cfg_path), "--out", str(s["root"] / "bad-refiner"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "data.domains[0].refiner" in err and "Traceback" not in err
