"""Bad input: one clear line naming the key or file, exit code 2, nothing written or lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simreal.cli.main import main

from .render_helpers import TINY, write_config


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def _render(cfg: Path, out: Path) -> list[str]:
    return ["render", "--config", str(cfg), "--out", str(out), "--workers", "1", "-q"]


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"camera": {"theta": [80.0, 20.0]}}, "camera.theta"),
        ({"camera": {"radius": [-1.0, 2.0]}}, "camera.radius"),
        ({"camera": {"radius": [0.3, 0.5]}}, "camera.radius: minimum 0.3 places the camera inside"),
        ({"cameraa": {}}, "cameraa: unknown key"),
        ({"objects": [{"category": "x", "asset": {"kind": "mesh"}}]}, "objects[0].asset"),
        ({"objects": [{"category": "x", "asset": {"kind": "mesh", "path": "/no/such.obj"}}]},
         "objects[0].asset.path"),
        ({"negatives": 1.5}, "negatives"),
        ({"background": {"weights": {"photo": 1.0}, "photo_folder": "EMPTY"}}, "background.photo_folder"),
        ({"background": {"weights": {"photo": 1.0}, "photo_folder": "BROKEN"}}, "broken.png"),
    ],
)
def test_bad_config_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict, needle: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "broken.png").write_bytes(b"not a png at all")
    bg = changes.get("background")
    if bg:
        bg["photo_folder"] = str(tmp_path / ("empty" if bg["photo_folder"] == "EMPTY" else "broken"))
    cfg = write_config(tmp_path, **changes)
    code, err = run(_render(cfg, tmp_path / "out"), capsys)
    assert code == 2
    assert err.startswith("simreal: error:") and "\n" not in err and "Traceback" not in err
    assert needle in err
    assert not (tmp_path / "out").exists()  # nothing written on bad input


def test_invalid_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\ncamera: [unclosed\n")
    code, err = run(_render(cfg, tmp_path / "out"), capsys)
    assert code == 2 and "bad.yaml" in err and "invalid YAML" in err


def test_broken_mesh_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mesh = tmp_path / "broken.obj"
    mesh.write_text("this is not an obj file\n")
    cfg = write_config(tmp_path, objects=[{"category": "x", "asset": {"kind": "mesh", "path": str(mesh)}}])
    code, err = run(_render(cfg, tmp_path / "out"), capsys)
    assert code == 2 and "broken.obj" in err and "objects[0].asset.path" in err


def test_output_folder_with_another_dataset_is_refused_and_kept(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, count=2)
    out = tmp_path / "out"
    assert main(_render(cfg, out)) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".log"}
    other = dict(TINY, seed=99, count=2)
    cfg2 = tmp_path / "other.yaml"
    cfg2.write_text(yaml.safe_dump(other))
    capsys.readouterr()
    code, err = run(_render(cfg2, out), capsys)
    assert code == 2 and "holds a different dataset" in err
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".log"}
    assert before == after
    # a non-empty folder that is not a dataset is refused too
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    code, err = run(_render(cfg, junk), capsys)
    assert code == 2 and "not a simreal dataset" in err
    assert (junk / "notes.txt").read_text() == "mine"


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "simreal" in capsys.readouterr().out
    assert main(["render", "--help"]) == 0
    out = capsys.readouterr().out
    for opt in ("--config", "--out", "--workers", "--executor", "--address", "--crop", "--seed", "--count"):
        assert opt in out


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"post": {"sharpen": {"p": 1.0}}}, "post: unknown effect"),
        ({"post": {"lut": {"p": 1.0, "names": ["no_such_look"]}}}, "post.lut.names"),
        ({"post": {"grain": {"p": 1.0, "intensity": [0.5, 0.1]}}}, "post.grain.intensity"),
    ],
)
def test_bad_sampler_settings_fail_before_rendering(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    changes: dict, needle: str) -> None:
    cfg = write_config(tmp_path, **changes)
    code, err = run(_render(cfg, tmp_path / "out"), capsys)
    assert code == 2 and needle in err and "\n" not in err
    assert not (tmp_path / "out").exists()
