"""The built-in render tiers: one copy each, shipped in the package, valid, and the one the CLI loads."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from simreal.config import load_config
from simreal.render.api import TIERS, tier_path
from simreal.render.job import dry_run
from simreal.render.spec import SceneConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tier", TIERS)
def test_tier_is_package_data_valid_and_what_the_cli_loads(tier: str) -> None:
    shipped = files("simreal") / "configs" / f"{tier}.yaml"
    assert shipped.is_file()
    assert Path(str(tier_path(tier))).read_bytes() == shipped.read_bytes()
    cfg = load_config(SceneConfig, tier_path(tier))
    assert cfg.tier == tier
    dry_run(cfg)  # every file and sampler setting it names is usable


def test_no_second_copy_of_a_tier_in_the_repository() -> None:
    """The package copy is the only one: a copy under configs/ would drift from what
    ``--config low|high`` renders."""
    shipped = {(files("simreal") / "configs" / f"{t}.yaml").read_bytes() for t in TIERS}
    copies = [p for p in (REPO / "configs").rglob("*.yaml") if p.read_bytes() in shipped or
              (p.parent.name == "render" and p.stem in TIERS)]
    assert not copies, f"edit src/simreal/configs/ instead of keeping copies: {copies}"
