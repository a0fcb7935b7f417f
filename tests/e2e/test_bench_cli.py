from pathlib import Path

from simreal.cli.main import main


def test_bench_digits_cli_writes_table(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["bench", "digits", "--seeds", "1", "--steps", "20", "--per-class", "10", "--out", str(tmp_path),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "| DANN |" in out and "oracle" in out
    md = (tmp_path / "digits_table.md").read_text()
    assert "refined + SC + DANN" in md and "Spearman" in md and (tmp_path / "digits_results.json").is_file()
    assert main(["bench", "digits", "--selection", "target_val"]) == 2


def test_bench_rare_object_quick_cli(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The whole pipeline on tiny sizes (one architecture): data folders, backbone pretraining (cached in a
    temporary folder), four rows, table, targets, results."""
    import json

    monkeypatch.setenv("SIMREAL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "rare"
    assert main(["bench", "rare-object", "--quick", "--seeds", "1", "--arch", "classifier", "--workers", "1",
                 "--device", "cpu", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    for row in ("synthetic + real nuisance", "+ layer-4 DANN", "+ multi-level DANN", "oracle (real rare labelled)"):
        assert f"| classifier (ResNet-18) | {row} |" in text
    assert "Targets:" in text and "AUC points over" in text and "Model selection: `last`" in text
    res = json.loads((out / "results.json").read_text())
    assert len(res["results"]) == 4 and all(0.0 <= r["auc"] <= 1.0 for r in res["results"]) and res["complete"]
    assert (out / "rare_object_table.md").is_file() and (out / "log.txt").is_file()
    assert (out / "data/seed0/real_test/annotations.json").is_file()
    assert len(list((tmp_path / "cache/bench/rare_object").glob("backbone-*.safetensors"))) == 1
    # an interrupted run (two rows written) resumes: only the missing rows train, the finished ones are kept
    kept = res["results"][:2]
    (out / "results.json").write_text(json.dumps({**res, "results": kept, "complete": False}))
    assert main(["bench", "rare-object", "--quick", "--seeds", "1", "--arch", "classifier", "--workers", "1",
                 "--device", "cpu", "--out", str(out), "-q"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["complete"] and again["results"][:2] == kept and len(again["results"]) == 4
    assert sorted(r["row"] for r in again["results"]) == sorted(r["row"] for r in res["results"])
    assert "resuming: 2 of 4 rows" in (out / "log.txt").read_text()
    assert main(["bench", "rare-object", "--arch", "nosuch", "--out", str(out)]) == 2
