"""End to end: simreal train / eval for re-identification (DANN with triplet loss, folder datasets, bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.unit.test_reid_task import make_identities, make_identity_folder, palettes

from simreal.cli.main import main


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("reiddata")
    return {"syn": make_identities(t / "syn", palettes(10, 0), 3, 0),
            "real": make_identity_folder(t / "real", palettes(6, 1), 2, 1),
            "test": make_identities(t / "test", palettes(8, 2), 2, 2, splits=True),
            "noid": make_identities(t / "noid", palettes(2, 3), 1, 3, identity_field=False)}


def _config(tmp: Path, syn: Path, real: Path, method: str = "dann") -> Path:
    cfg = tmp / f"reid_{method}.yaml"
    cfg.write_text(f"""task: reid
seed: 0
data:
  image_size: [32, 16]
  domains:
    - {{path: {syn}, name: synthetic, role: source}}
    - {{path: {real}, name: real, role: target, labelled: false}}
model: {{arch: smallcnn, width: 8, embedding_dim: 32}}
method: {{name: {method}, alpha: 0.1, schedule: constant, disc_hidden: [16], adda_steps: 10,
          triplet_weight: 1.0, triplet_margin: 0.3}}
optim: {{steps: 40, batch_per_domain: 16, lr: 0.003, lr_schedule: constant}}
selection: {{policy: source_val, eval_every: 20}}
reid: {{label_smoothing: 0.1, instances_per_identity: 4, distance: euclidean}}
checkpoint_every: 20
""")
    return cfg


@pytest.mark.parametrize("method", ["dann", "adda"])
def test_train_then_eval(tmp_path: Path, data: dict[str, Path], method: str) -> None:
    run = tmp_path / "run"
    assert main(["train", "--config", str(_config(tmp_path, data["syn"], data["real"], method)), "--out", str(run),
                 "--quiet", "--device", "cpu"]) == 0
    meta = json.loads((run / "checkpoints" / "final.json").read_text())
    assert meta["task"] == "reid" and meta["task_state"] == {"num_ids": 10}
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("disc_acc/0" in r for r in recs) and any("select/source_val" in r for r in recs)
    # query/gallery splits on a dataset of unseen identities
    assert main(["eval", "--run", str(run), "--data", str(data["test"]), "--device", "cpu"]) == 0
    rep = run / "eval" / "test"
    m = json.loads((rep / "metrics.json").read_text())
    assert m["num_query"] == 8 and m["num_gallery"] == 24 and m["query_gallery"] == "query/gallery splits"
    for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "cuhk03_rank1", "cuhk03_mAP"):
        assert 0.0 <= m[k] <= 1.0, k
    assert m["rank1"] > 1 / 8  # above chance even after 40 steps
    text = (rep / "report.md").read_text()
    assert "| rank1 |" in text and "| mAP |" in text and "![cmc](cmc.png)" in text and (rep / "cmc.png").is_file()
    # a plain identity folder (camera from the _c<N> file names), all vs all
    assert main(["eval", "--run", str(run), "--data", str(data["real"]), "--out", str(tmp_path / "ev"),
                 "--device", "cpu"]) == 0
    m2 = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m2["num_query"] == 24 and m2["query_gallery"] == "all vs all"


def test_no_identities_is_one_line_exit_2(tmp_path: Path, data: dict[str, Path],
                                          capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--config", str(_config(tmp_path, data["noid"], data["real"])), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "noid" in err[0] and "no identities" in err[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(_config(tmp_path, data["syn"], data["real"]).read_text().replace("smallcnn", "vgg16"))
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "vgg16" in capsys.readouterr().err
