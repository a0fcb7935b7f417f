"""The config reference: every field documented, docs/config.md generated from the code, schemas valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simreal.cli.main import main
from simreal.config_reference import CONFIGS, config_model, markdown, schema, undocumented

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_every_config_field_has_a_description() -> None:
    assert undocumented() == []


def test_docs_config_md_is_generated_from_the_code() -> None:
    assert DOCS.read_text() == markdown(), "docs/config.md is stale: run `simreal config docs -o docs/config.md`"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_schema_lists_every_field_with_its_description(name: str) -> None:
    doc = schema(name)
    model = config_model(name)
    props = doc["properties"]
    assert set(props) == set(model.model_fields)
    for key, f in model.model_fields.items():
        assert props[key].get("description") == f.description


def test_schema_cli_prints_json_and_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema", "render"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["title"] == "SceneConfig" and "camera" in doc["properties"]
    assert main(["config", "schema", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "render" in err and "Traceback" not in err
