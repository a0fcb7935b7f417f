"""``simreal refine train/apply/eval`` end to end on tiny datasets, resume after SIGKILL, bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simreal.cli.main import main
from simreal.datasets import Dataset, DatasetWriter, encode_image, encode_mask, mask_bbox, mask_to_rle

TINY = (
    "net: {ngf: 4, ndf: 4, n_blocks: 1}\ndata: {crop_size: 24}\n"
    "train: {epochs: 1, epochs_decay: 1, num_samples: 2, log_every: 2, pool_size: 4}\n"
    "loss: {lambda_mask_identity: 1.0}\ncut: {num_patches: 16}\n"
)


def make_dataset(
    root: Path,
    n: int = 4,
    size: int = 32,
    color: tuple[int, int, int] = (200, 60, 60),
    seed: int = 0,
    domain: str = "synthetic",
    gray: bool = False,
) -> Path:
    """A dataset folder: noisy background, one square object per image with mask and COCO annotation."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, root.name, domain, [{"id": 1, "name": "blob"}])
    images, anns = [], []
    for i in range(n):
        img = (40 + rng.integers(0, 30, (size, size, 3))).astype(np.uint8)
        m = np.zeros((size, size), np.uint16)
        y, x = rng.integers(2, size - 12, 2)
        m[y : y + 10, x : x + 10] = 1
        img[m == 1] = color
        if gray:
            img = img.mean(2).astype(np.uint8)
        w.write_file(f"images/{i:04d}.png", encode_image(img))
        w.write_file(f"masks/{i:04d}.png", encode_mask(m))
        images.append(
            {
                "id": i + 1,
                "file_name": f"images/{i:04d}.png",
                "width": size,
                "height": size,
                "mask_file": f"masks/{i:04d}.png",
            }
        )
        b = m == 1
        anns.append(
            {
                "image_id": i + 1,
                "category_id": 1,
                "bbox": mask_bbox(b),
                "area": float(b.sum()),
                "segmentation": mask_to_rle(b),
                "iscrowd": 0,
                "instance_id": 1,
            }
        )
    w.finalize(images, anns)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("refine")
    cfg = root / "refiner.yaml"
    cfg.write_text(TINY)
    return {
        "root": root,
        "src": make_dataset(root / "synthetic"),
        "real": make_dataset(root / "real", color=(60, 200, 60), seed=1, domain="real"),
        "cfg": cfg,
    }


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("model", ["cyclegan", "cut"])
def test_train_apply_eval(data: dict[str, Path], capsys: pytest.CaptureFixture[str], model: str) -> None:
    run = data["root"] / f"run-{model}"
    # CUT learns from a plain image folder of real images (no dataset.json), CycleGAN from a dataset folder
    target = data["real"] / "images" if model == "cut" else data["real"]
    code, out, err = run_cli(
        [
            "refine",
            "train",
            "--source",
            data["src"],
            "--target",
            target,
            "--config",
            data["cfg"],
            "--out",
            run,
            "--set",
            f"model={model}",
            "--device",  # explicitly on the CPU: what --device auto picks here, also on a GPU machine
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    for rel in (
        "config.yaml",
        "run.json",
        "log.txt",
        "metrics.jsonl",
        "samples/epoch_0002.png",
        f"checkpoints/{_ckpt(run, 2).name}",
        f"checkpoints/{_ckpt(run, 2).with_suffix('.json').name}",
    ):
        assert (run / rel).is_file(), rel
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["iteration"] == 8
    expected = (
        {"G", "D_B", "D_A", "cycle_A", "idt_A", "mask_idt_A"}
        if model == "cyclegan"
        else {"G", "D", "G_GAN", "NCE", "NCE_Y", "mask_idt_A"}
    )
    assert expected <= set(rows[0])
    assert f"model: {model}" in (run / "config.yaml").read_text()
    grid = np.asarray(Image.open(run / "samples" / "epoch_0002.png"))
    assert grid.shape[1] > 3 * 24 and grid.shape[0] > 2 * 24  # 2 rows x 3 columns

    refined = data["root"] / f"refined-{model}"
    code, out, err = run_cli(
        ["refine", "apply", "--run", run, "--source", data["src"], "--out", refined, "--device", "cpu"], capsys
    )
    assert code == 0, err
    src, ref = Dataset.open(data["src"]), Dataset.open(refined)
    assert ref.domain == "refined" and len(ref) == len(src)
    assert ref.info["provenance"]["refine_run"] == str(run)
    assert ref.info["provenance"]["parents"][0]["path"] == str(data["src"])
    for a, b in zip(src.annotations, ref.annotations, strict=True):
        assert a["bbox"] == b["bbox"] and a["segmentation"] == b["segmentation"]
    # the refined dataset is in the COCO layout: file_name relative to images/, simreal's fields in "simreal"
    doc = json.loads((refined / "annotations.json").read_text())
    assert [r["file_name"] for r in doc["images"]] == [f"{i:04d}.png" for i in range(len(src))]
    assert all((refined / "images" / r["file_name"]).is_file() for r in doc["images"])
    assert all(a["simreal"]["instance_id"] == 1 and "instance_id" not in a for a in doc["annotations"])
    assert np.array_equal(src.load_mask(0), ref.load_mask(0))
    assert ref.load_image(0).shape == src.load_image(0).shape
    before = {p.name: p.stat().st_mtime_ns for p in (refined / "images").iterdir()}
    code, out, err = run_cli(
        ["refine", "apply", "--run", run, "--source", data["src"], "--out", refined], capsys
    )
    assert code == 0, err  # a rerun finds every image done in manifest.sqlite and rewrites none
    assert {p.name: p.stat().st_mtime_ns for p in (refined / "images").iterdir()} == before
    assert len(Dataset.open(refined)) == len(src)

    code, out, err = run_cli(
        [
            "refine",
            "eval",
            "--run",
            run,
            "--extractor",
            "pixels",
            "--allow-few-samples",
            "--kid-subset-size",
            "4",
            "--kid-subsets",
            "3",
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((run / "eval.json").read_text())
    assert res["counts"] == {"synthetic": 4, "refined": 4, "real": 4}
    assert np.isfinite(res["fid_refined_real"]) and (run / "eval_pca.png").is_file()
    assert "FID" in (run / "report.md").read_text()


def test_crop_mode_train_and_apply_keeps_background(data: dict[str, Path], capsys) -> None:
    run = data["root"] / "run-crops"
    code, _, err = run_cli(
        [
            "refine",
            "train",
            "--source",
            data["src"],
            "--target",
            data["real"],
            "--config",
            data["cfg"],
            "--out",
            run,
            "--set",
            "crops={enabled: true, size: 16, rotate_upright: true}",
            "--set",
            "train.epochs_decay=0",
            "--set",
            "net.n_layers_d=2",
        ],
        capsys,
    )
    assert code == 0, err
    out = data["root"] / "refined-crops"
    code, _, err = run_cli(["refine", "apply", "--run", run, "--source", data["src"], "--out", out], capsys)
    assert code == 0, err
    src, ref = Dataset.open(data["src"]), Dataset.open(out)
    for i in range(len(src)):
        fg = src.load_mask(i) > 0
        a, b = src.load_image(i), ref.load_image(i)
        assert np.array_equal(a[~fg], b[~fg])  # only the objects change
        assert not np.array_equal(a[fg], b[fg])


def _ckpt(run: Path, epoch: int) -> Path:
    """The tensors of the checkpoint written at the end of ``epoch``."""
    for meta in (run / "checkpoints").glob("step_*.json"):
        if json.loads(meta.read_text())["epoch"] == epoch:
            return meta.with_suffix(".safetensors")
    raise AssertionError(f"no checkpoint of epoch {epoch} in {run}")


def test_resume_after_sigkill(data: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = tmp_path / "slow.yaml"
    cfg.write_text(
        TINY.replace("epochs: 1, epochs_decay: 1", "epochs: 4, epochs_decay: 0, iterations_per_epoch: 6")
    )
    cmd = [
        sys.executable,
        "-c",
        "import sys; from simreal.cli.main import main; sys.exit(main(sys.argv[1:]))",
        "refine",
        "train",
        "--source",
        str(data["src"]),
        "--target",
        str(data["real"]),
        "--config",
        str(cfg),
        "--out",
        str(run),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    first = run / "checkpoints" / "step_00000006.json"  # epoch 1 of 6 iterations
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.exists(), "no checkpoint written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (run / "checkpoints").glob("step_*.json"))
    assert done and done[-1] != "step_00000024.json", "training finished before the kill; make it slower"
    resumed_from = int(done[-1][5:13])
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    log = (run / "log.txt").read_text()
    assert f"resumed from step_{resumed_from:08d}.safetensors" in log
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    its = [r["iteration"] for r in rows]
    assert its == sorted(set(its)) and its[-1] == 24  # no duplicated or missing log lines
    meta = json.loads((run / "checkpoints" / "step_00000024.json").read_text())
    assert meta["iteration"] == 24 and meta["epoch"] == 4


def _err_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("simreal: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_bad_inputs(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["refine", "train", "--config", data["cfg"]]

    def train_with(out: Path, setting: str) -> tuple[int, str]:
        """Train on the good data with one ``--set`` override; the exit code and the error line."""
        code, _, err = run_cli(
            base + ["--source", data["src"], "--target", data["real"], "--out", out, "--set", setting], capsys
        )
        return code, _err_line(err)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(
        base + ["--source", empty, "--target", data["real"], "--out", tmp_path / "r1"], capsys
    )
    assert code == 2 and "no images found" in _err_line(err)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    code, _, err = run_cli(
        base + ["--source", data["src"], "--target", broken, "--out", tmp_path / "r2"], capsys
    )
    assert code == 2 and "unreadable image" in _err_line(err)

    gray = make_dataset(tmp_path / "gray", gray=True, domain="real")
    code, _, err = run_cli(
        base + ["--source", data["src"], "--target", gray, "--out", tmp_path / "r3"], capsys
    )
    assert code == 2 and "channel mismatch" in _err_line(err)

    code, err = train_with(tmp_path / "r4", "data.crop_size=64")
    assert code == 2 and "smaller than the crop size" in err

    other = tmp_path / "other-run"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"kind": "adapt", "model": "dann"}))
    code, _, err = run_cli(
        ["refine", "apply", "--run", other, "--source", data["src"], "--out", tmp_path / "o"], capsys
    )
    assert code == 2 and "expected a 'refine' run" in _err_line(err)

    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "notes.txt").write_text("keep me")
    code, _, err = run_cli(base + ["--source", data["src"], "--target", data["real"], "--out", keep], capsys)
    assert code == 2 and "not a simreal run folder" in _err_line(err)
    assert (keep / "notes.txt").read_text() == "keep me"

    code, err = train_with(
        tmp_path / "r5", "loss.perceptual={extractor: vgg16, vgg_weights: /nonexistent/vgg.pth, lambda_mean_feat: 1.0}"
    )
    assert code == 2 and "weights file not found" in err

    code, err = train_with(tmp_path / "r6", "train.bogus=1")
    assert code == 2 and "unknown key" in err


def test_run_of_another_model_is_not_resumed(data: dict[str, Path], tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("epochs: 1, epochs_decay: 1", "epochs: 1, epochs_decay: 0"))
    code, _, err = run_cli(
        ["refine", "train", "--source", data["src"], "--target", data["real"], "--config", cfg, "--out", run],
        capsys,
    )
    assert code == 0, err
    before = _ckpt(run, 1).read_bytes()
    code, _, err = run_cli(
        [
            "refine",
            "train",
            "--source",
            data["src"],
            "--target",
            data["real"],
            "--config",
            cfg,
            "--out",
            run,
            "--set",
            "model=cut",
        ],
        capsys,
    )
    assert code == 2 and "different config (first difference: model)" in _err_line(err)
    assert _ckpt(run, 1).read_bytes() == before
    # a checkpoint that does not fit the run's configured networks
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("ngf: 4", "ngf: 6"))
    code, _, err = run_cli(
        ["refine", "apply", "--run", run, "--source", data["src"], "--out", tmp_path / "x"], capsys
    )
    assert code == 2 and "does not fit" in _err_line(err)
