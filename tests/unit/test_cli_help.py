"""Every command's --help reads cleanly: no <bool> placeholders, no line breaks inside a paragraph of the
command's description, and the common options spelled the same everywhere."""

from __future__ import annotations

import inspect

import pytest
import typer
from typer.testing import CliRunner

from simreal.cli.main import app


def _commands() -> list[tuple[list[str], object]]:
    root = typer.main.get_command(app)
    out: list[tuple[list[str], object]] = []

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append((path, cmd))

    walk(root, [])
    return out


COMMANDS = _commands()
WITH_PROGRESS = {("render",), ("train",), ("refine", "train"), ("refine", "apply"), ("metrics", "fid"),
                 ("metrics", "kid"), ("metrics", "pca"), ("anonymize", "train"), ("anonymize", "apply"),
                 ("anonymize", "audit"), ("anonymize", "sweep"), ("anonymize", "digits")}


def _help(path: list[str]) -> str:
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400", "TERM": "dumb"}, prog_name="simreal")
    assert res.exit_code == 0, res.output
    return res.output


def test_every_command_is_listed() -> None:
    names = {tuple(p) for p, _ in COMMANDS}
    assert WITH_PROGRESS <= names and ("config", "schema") in names and ("eval",) in names


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_is_clean(path: list[str], cmd: object) -> None:
    text = _help(path)
    assert "<bool>" not in text
    lines = [" ".join(line.strip(" │╭╮╰╯─").split()) for line in text.splitlines()]
    doc = inspect.cleandoc(getattr(cmd, "help", None) or "")
    for para in doc.split("\n\n"):
        flat = " ".join(para.split())
        if flat:
            assert any(flat in line for line in lines), f"paragraph broken across lines: {flat!r}"
    assert "--no-progress" not in text
    if tuple(path) in WITH_PROGRESS:
        assert any(line.startswith("--quiet -q") for line in lines), "progress bars hide with -q/--quiet"
