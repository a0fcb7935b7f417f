"""Reference generator checkpoints (2018 CycleGAN with instance-norm running stats, DataParallel prefixes)
import into a refiner run that refines exactly as the generator does; a file that does not fit is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simreal.cli.main import main
from simreal.nn.gan import ResnetGenerator, init_weights
from simreal.refine.run import load_refiner

CFG = "model: cyclegan\nnet: {ngf: 8, n_blocks: 2}\ndata: {crop_size: 64}\n"


def _reference_file(tmp_path: Path) -> tuple[Path, ResnetGenerator]:
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=2), "normal", 0.02).eval()
    state = {f"module.{k}": v for k, v in g.state_dict().items()}  # saved from a DataParallel model
    # what PyTorch < 0.4 stored for InstanceNorm2d(affine=False): running statistics the model no longer has
    for name, m in g.named_modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            c = m.num_features
            state[f"module.{name}.running_mean"] = torch.rand(c)
            state[f"module.{name}.running_var"] = torch.rand(c) + 0.5
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(state, path)
    return path, g


def test_2018_checkpoint_imports_and_refines_like_the_generator(tmp_path: Path, capsys) -> None:
    path, g = _reference_file(tmp_path)
    (tmp_path / "cfg.yaml").write_text(CFG)
    assert main(["refine", "import", "--weights", str(path), "--out", str(tmp_path / "run"),
                 "--config", str(tmp_path / "cfg.yaml")]) == 0
    model, cfg, info, meta = load_refiner(tmp_path / "run")
    assert info["imported_from"] == str(path) and meta["epoch"] == 0
    x = torch.rand(2, 3, 40, 36) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.refine(x), g(x))
    # an imported generator has no discriminators: training it further is refused in one line
    import numpy as np
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(imgs / f"{i}.png")
    capsys.readouterr()
    assert main(["refine", "train", "--source", str(imgs), "--target", str(imgs), "--out", str(tmp_path / "run"),
                 "-q"]) == 2
    assert "imported generator" in capsys.readouterr().err


def test_generator_of_another_shape_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path, _ = _reference_file(tmp_path)
    (tmp_path / "cfg.yaml").write_text(CFG.replace("ngf: 8", "ngf: 16"))
    assert main(["refine", "import", "--weights", str(path), "--out", str(tmp_path / "run"),
                 "--config", str(tmp_path / "cfg.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latest_net_G_A.pth" in err[0] and "has shape" in err[0]
    assert not (tmp_path / "run").exists()
