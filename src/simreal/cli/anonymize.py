"""``simreal anonymize``: thin layers over ``simreal.anonymize`` (train), ``.apply``, ``.audit``, ``.sweep``
and ``.make_digits``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from simreal.cli.common import device_option, quiet_option, set_option
from simreal.config import parse_overrides
from simreal.errors import ConfigError

anonymize_app = typer.Typer(
    name="anonymize", no_args_is_help=True,
    help="Remove a private attribute from an image dataset (mutual-information anonymizer) and audit it with "
         "fresh attackers.")


def _command() -> str:
    return " ".join(["simreal", *sys.argv[1:]])


@anonymize_app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Dataset whose image records carry the private label field."),
    private_label: str | None = typer.Option(None, "--private-label",
                                             help="Record field of the private label (default: the config's)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (or resume)."),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="anon.yaml (default: the run's own config when resuming, else defaults)."),
    set_: list[str] = set_option("loss.lam=2"),
    device: str | None = device_option(None),
    quiet: bool = quiet_option(),
) -> None:
    """Train an anonymizer (three phases); rerunning the same command resumes from the last checkpoint."""
    import simreal

    res = simreal.anonymize(data, out, config, private_label=private_label, overrides=parse_overrides(set_),
                            device=device, progress=not quiet)
    typer.echo(f"{res.run}: {res.steps} steps; autoencoder {res.final}")


@anonymize_app.command("apply")
def apply_cmd(
    run: Path = typer.Option(..., "--run", help="Anonymize run folder."),
    data: Path = typer.Option(..., "--data", help="Dataset to anonymize."),
    out: Path = typer.Option(..., "--out", "-o", help="Anonymized dataset folder to write (must not exist)."),
    keep_private: bool = typer.Option(False, "--keep-private",
                                      help="Keep the private field in the records (for auditing only)."),
    substitute: bool | None = typer.Option(
        None, "--substitute/--no-substitute",
        help="Replace each output by the nearest training image of the chosen identity (intertwined runs; "
             "default: the run's config)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Images per forward pass."),
    device: str | None = device_option(None),
    quiet: bool = quiet_option(),
) -> None:
    """Write the anonymized dataset: same records, domain "anonymized", provenance, private field removed."""
    import simreal

    res = simreal.anonymize.apply(run, data, out, keep_private=keep_private, substitute_identity=substitute,
                                  batch_size=batch_size, device=device, progress=not quiet, command=_command())
    typer.echo(f"{res.out}: {res.images} anonymized images")


@anonymize_app.command("audit")
def audit_cmd(
    original: Path = typer.Option(..., "--original", help="The original dataset (labels are read from it)."),
    anonymized: Path = typer.Option(..., "--anonymized", help="Its anonymized version (records matched by id)."),
    private_label: str = typer.Option(..., "--private-label", help="Record field of the private label."),
    utility_label: str | None = typer.Option(None, "--utility-label",
                                             help="Record field of a utility label the anonymizer never saw."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default: ANONYMIZED/audit)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="audit.yaml (attackers, epochs, seeds)."),
    set_: list[str] = set_option("seeds=[0,1,2]"),
    device: str | None = device_option(None),
    quiet: bool = quiet_option(),
) -> None:
    """Train fresh attackers on the anonymized and the original training split, test on the held-out split."""
    import simreal
    from simreal.privacy.assess import summary_line

    res = simreal.anonymize.audit(original, anonymized, out, private_label=private_label,
                                  utility_label=utility_label, config=config, overrides=parse_overrides(set_),
                                  device=device, progress=not quiet)
    typer.echo(summary_line(res.summary))
    typer.echo(f"report: {res.report}")


def _lambdas(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--lambdas {text!r}: expected comma-separated numbers, e.g. 0,0.5,1,2") from None


@anonymize_app.command("sweep")
def sweep_cmd(
    data: Path = typer.Option(..., "--data", help="Dataset with the private (and utility) label fields."),
    private_label: str = typer.Option(..., "--private-label", help="Record field of the private label."),
    utility_label: str | None = typer.Option(None, "--utility-label",
                                             help="Record field of a utility label the anonymizer never saw."),
    lambdas: str = typer.Option("0,0.5,1,2,4", "--lambdas", help="Comma-separated lambda values."),
    out: Path = typer.Option(..., "--out", "-o", help="Sweep folder (runs, datasets, audits, sweep.md/png)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="anon.yaml for every run (lambda varies)."),
    audit_config: Path | None = typer.Option(None, "--audit-config", help="audit.yaml."),
    set_: list[str] = set_option("train.steps=600"),
    audit_set: list[str] = typer.Option([], "--audit-set", metavar="KEY=VALUE",
                                        help="Override an audit config key, e.g. --audit-set max_epochs=30."),
    tolerance: float = typer.Option(0.10, "--tolerance", min=0.0, max=1.0,
                                    help="Utility drop allowed for the best lambda (fraction)."),
    device: str | None = device_option(None),
    quiet: bool = quiet_option(),
) -> None:
    """Train, apply and audit one anonymizer per lambda; table and plot of accuracy versus lambda."""
    import simreal

    res = simreal.anonymize.sweep(data, out, _lambdas(lambdas), private_label=private_label,
                                  utility_label=utility_label, config=config, audit_config=audit_config,
                                  overrides=parse_overrides(set_), audit_overrides=parse_overrides(audit_set),
                                  device=device, tolerance=tolerance, progress=not quiet)
    for r in res.rows:
        util = "" if r.get("utility") is None else f"  utility {r['utility']:.1%}"
        typer.echo(f"lambda {r['lambda']:g}: private {r['private']:.1%}{util}  PSNR {r['psnr_db']:.1f} dB")
    typer.echo(f"best lambda: {'none' if res.best is None else format(res.best['lambda'], 'g')}; "
               f"report: {res.report}")


@anonymize_app.command("digits")
def digits_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (must not exist)."),
    per_cell: int = typer.Option(40, "--per-cell", min=1, help="Images per (font family, digit)."),
    families: int = typer.Option(12, "--families", min=2, help="Font families to use (the first found)."),
    size: int = typer.Option(32, "--size", min=12, help="Image side in pixels (32, or 20 as in the paper)."),
    seed: int = typer.Option(0, "--seed", help="Root seed."),
    test_fraction: float = typer.Option(0.25, "--test-fraction", min=0.0, max=0.9,
                                        help="Share of each (font, digit) cell marked split=test."),
    quiet: bool = quiet_option(),
) -> None:
    """Doubly-labelled test data: digits (field "digit") in several font families (field "font")."""
    import simreal
    from simreal.privacy.fontdigits import describe_families, find_font_families

    typer.echo(describe_families(find_font_families(families), families))
    info = simreal.anonymize.make_digits(out, per_cell=per_cell, families=families, size=size, seed=seed,
                                         test_fraction=test_fraction, command=_command(), progress=not quiet)
    typer.echo(f"{out}: {info['counts']['images']} images")


def register(app: typer.Typer) -> None:
    """Add the ``anonymize`` command group."""
    app.add_typer(anonymize_app, name="anonymize")
