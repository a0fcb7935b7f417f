"""The notebook-style example of docs/api.md runs as written (render -> train -> evaluate)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.mark.slow
def test_docs_api_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    example = blocks[0]
    assert len([ln for ln in example.splitlines() if ln.strip()]) <= 16  # short, as promised
    old = os.getcwd()
    os.chdir(tmp_path)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(example, str(DOC), "exec"), {})  # noqa: S102 - our own documentation
    finally:
        os.chdir(old)
    text = out.getvalue()
    iou, auc = (float(v) for v in re.search(r"canister IoU ([0-9.]+), image ROC-AUC ([0-9.]+)", text).groups())
    # measured 0.40 and 0.87: the model finds the canister in renders of another seed
    assert iou >= 0.25 and auc >= 0.75, text
    assert re.search(r"report: (\S+report.md)", text) and (tmp_path / "runs/api_demo/eval").is_dir()
