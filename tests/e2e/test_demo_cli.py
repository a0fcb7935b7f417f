"""`simreal demo` end to end on tiny settings: a rendered dataset, a preview and a digits table."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from simreal.cli.main import main
from simreal.datasets import Dataset


def test_demo_renders_previews_and_prints_the_digits_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--out", str(tmp_path), "--count", "3", "--workers", "1", "--digits-seeds", "1",
                 "--digits-steps", "30", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert len(Dataset.open(tmp_path / "render_low")) == 3
    assert Image.open(tmp_path / "render_low_preview.png").size[0] > 0
    assert "images 3" in out
    assert "DANN" in out and "source only" in out
    assert (tmp_path / "digits" / "digits_table.md").is_file()
