"""``simreal triage``: run (or resume) a triage, rank its elements, export review marks, show status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

import typer

from simreal.cli.common import device_option, quiet_option, set_option
from simreal.config import parse_overrides

app = typer.Typer(help="Triage media at scale: select, sample frames, score with trained models, rank, review.",
                  no_args_is_help=True)


def _echo_list(title: str, items: list[tuple[str, str]], limit: int = 10) -> None:
    if not items:
        return
    typer.echo(f"{title}:")
    for src, why in items[:limit]:
        typer.echo(f"  {src}: {why}")
    if len(items) > limit:
        typer.echo(f"  ... and {len(items) - limit} more (see summary.json)")


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="Triage config YAML (mtriage configs work; see docs/triage.md)."),
    folder: Path | None = typer.Option(None, "--folder", "-o", help="Triage folder (overrides the config's)."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=0,
                                       help="Decoding processes (default: CPU count; 0 = in this process)."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", min=1, help="Frames per model forward pass."),
    device: str | None = device_option(None),
    executor: Literal["local", "ray"] | None = typer.Option(None, "--executor", help="local (processes) or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (with --executor ray)."),
    keep_frames: bool | None = typer.Option(None, "--keep-frames/--drop-frames",
                                            help="Keep the JPEG frames, or drop them once scored."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try elements that failed before again."),
    set_: list[str] = set_option("analyse.0.config.fps=0.5"),
    quiet: bool = quiet_option(),
) -> None:
    """Run a triage config; a rerun of the same command does only the missing work."""
    from simreal.triage import run

    res = run(config, folder=folder, workers=workers, batch_size=batch_size, device=device, executor=executor,
              address=address, keep_frames=keep_frames, retry_failed=retry_failed or None,
              overrides=parse_overrides(set_), progress=not quiet,
              warn=lambda line: print(f"simreal: note: {line}", file=sys.stderr))
    typer.echo(f"triage: {len(res.done)} done ({res.reused} already done), {len(res.skipped)} skipped, "
               f"{len(res.failed)} failed in {res.seconds:.1f}s; {res.frames_scored} frame scores")
    _echo_list("skipped", res.skipped)
    _echo_list("failed", res.failed)
    typer.echo(f"results: {res.results}")
    typer.echo(f"review:  {res.view_command}")


@app.command("rank")
def rank_cmd(
    folder: Path = typer.Argument(..., help="A triage folder."),
    by: Literal["count", "max", "topk-mean", "fraction"] = typer.Option("count", "--by", help="Ranking metric."),
    threshold: float = typer.Option(0.5, "--threshold", "-t", help="Score at which a frame counts as positive."),
    k: int = typer.Option(5, "--k", help="k of topk-mean."),
    model: str | None = typer.Option(None, "--model", help="Model name (default: the first)."),
    label: str | None = typer.Option(None, "--label", help="Label (default: the first that is not background)."),
    chain: str | None = typer.Option(None, "--chain", help="Chain id or prefix (default: the latest run)."),
    top: int = typer.Option(20, "--top", min=0, help="Rows to print (0 = all)."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Write the whole ranking as CSV here."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
) -> None:
    """Rank a triage folder's videos and images by a metric of their frame scores."""
    from simreal.runtime.io import atomic_write_text
    from simreal.triage.ranking import rank_folder
    from simreal.triage.results import ranking_csv

    res = rank_folder(folder, by, threshold, k, model, label, chain)
    rows = res["elements"]
    if csv_out is not None:
        atomic_write_text(csv_out, ranking_csv(rows))
    if as_json:
        typer.echo(json.dumps(res, indent=2))
        return
    typer.echo(f"chain {res['chain']}  model {res['model']}  label {res['label']}  by {by} (threshold {threshold})")
    typer.echo(f"{'rank':>4}  {'value':>9}  {'max':>6}  {'best t':>8}  title")
    for r in rows[: top or None]:
        best = f"{r['best_t']:.1f}s" if r["best_t"] is not None else "-"
        typer.echo(f"{r['rank']:>4}  {r['value']:>9.3f}  {r['max']:>6.3f}  {best:>8}  "
                   f"{(r['title'] or r['element'])!s}"[:160])
    if csv_out is not None:
        typer.echo(f"csv: {csv_out}")


@app.command("export")
def export_cmd(
    folder: Path = typer.Argument(..., help="A triage folder with review marks."),
    reviewed: bool = typer.Option(False, "--reviewed", help="Export the frames marked in review as a dataset."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Dataset folder to write (with --reviewed)."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Write the reviewed hits (time links, notes) as CSV."),
    chain: str | None = typer.Option(None, "--chain", help="Chain id or prefix (default: each mark's own)."),
) -> None:
    """Turn review marks into a labelled real dataset (relevant -> label + boxes, not relevant -> negative)."""
    from simreal.errors import ConfigError

    if not reviewed and csv_out is None:
        raise ConfigError("export: give --reviewed --out DATASET and/or --csv FILE")
    if reviewed:
        if out is None:
            raise ConfigError("--reviewed needs --out DATASET (a new folder)")
        from simreal.triage.export import export_reviewed

        info = export_reviewed(folder, out, chain)
        c = info["counts"]
        typer.echo(f"dataset: {out}  {c['images']} images ({c['negatives']} negatives), {c['annotations']} boxes, "
                   f"classes {[x['name'] for x in info['categories']]}")
    if csv_out is not None:
        from simreal.runtime.io import atomic_write_text
        from simreal.triage.results import load_elements, resolve_chain
        from simreal.triage.reviews import reviewed_csv

        meta = resolve_chain(folder, chain)
        results = {r["element"]: r for r in load_elements(folder, meta["id"])}
        atomic_write_text(csv_out, reviewed_csv(folder, results))
        typer.echo(f"csv: {csv_out}")


@app.command("status")
def status_cmd(folder: Path = typer.Argument(..., help="A triage folder.")) -> None:
    """Chains, element counts and failures recorded in a triage folder."""
    from simreal.triage.results import list_chains
    from simreal.triage.store import Store

    with Store(folder, readonly=True) as st:
        els = {e["id"]: e for e in st.elements()}
        rows = list(st.tasks())
    n_el = len(els)
    chains = list_chains(folder)
    typer.echo(f"{folder}: {n_el} elements, {len(chains)} chain(s)")
    for c in chains:
        s = {}
        p = folder / "results" / c["id"] / "summary.json"
        if p.is_file():
            s = json.loads(p.read_text())
        typer.echo(f"  {c['id']}  updated {c['updated']}  fps {c['sampling']['fps']}  models "
                   f"{', '.join(c['models']) or '-'}  done {len(s.get('done', []))}  failed {len(s.get('failed', []))}")
    failed = [r for r in rows if r["status"] == "failed"]
    for r in failed[:20]:
        src = els.get(r["input"], {}).get("source", "")
        typer.echo(f"  failed {r['stage']} {r['input']} {src}: {r['error']}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="triage")
