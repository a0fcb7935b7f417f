from pathlib import Path

from simreal.cli.main import main


def test_bench_digits_cli_writes_table(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["bench", "digits", "--seeds", "1", "--steps", "20", "--per-class", "10", "--out", str(tmp_path),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "| DANN |" in out and "oracle" in out
    md = (tmp_path / "digits_table.md").read_text()
    assert "refined synthetic" in md and (tmp_path / "digits_results.json").is_file()
    assert main(["bench", "digits", "--selection", "target_val"]) == 2
