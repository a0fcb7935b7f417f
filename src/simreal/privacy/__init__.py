"""Dataset anonymization by mutual information (Feutry, Piantanida & Duhamel, ICASSP 2020) and an audit
by fresh attackers.

The package is also the stage function: ``simreal.anonymize(data, out, private_label=...)`` trains (or
resumes) an anonymizer run (:func:`train`); :func:`apply` writes the anonymized dataset, :func:`audit`
trains fresh attackers on it, :func:`sweep` does all three over a range of lambda and
:func:`make_digits` writes the doubly-labelled font digits. Heavy modules are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simreal._callable import make_callable

if TYPE_CHECKING:
    from simreal.privacy.assess import AuditResult
    from simreal.privacy.fit import AnonymizeResult
    from simreal.privacy.lambdas import SweepResult
    from simreal.privacy.write import ApplyResult

__all__ = ["apply", "audit", "make_digits", "sweep", "train"]


def train(*args: Any, **kwargs: Any) -> AnonymizeResult:
    """Train or resume an anonymizer run; see :func:`simreal.privacy.fit.train`."""
    from simreal.privacy.fit import train as _train

    return _train(*args, **kwargs)


def apply(*args: Any, **kwargs: Any) -> ApplyResult:
    """Write the anonymized dataset of a run; see :func:`simreal.privacy.write.apply`."""
    from simreal.privacy.write import apply as _apply

    return _apply(*args, **kwargs)


def audit(*args: Any, **kwargs: Any) -> AuditResult:
    """Fresh attackers on anonymized vs original data; see :func:`simreal.privacy.assess.audit`."""
    from simreal.privacy.assess import audit as _audit

    return _audit(*args, **kwargs)


def sweep(*args: Any, **kwargs: Any) -> SweepResult:
    """Train, apply and audit over a range of lambda; see :func:`simreal.privacy.lambdas.sweep`."""
    from simreal.privacy.lambdas import sweep as _sweep

    return _sweep(*args, **kwargs)


def make_digits(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Write the font-as-identity digits dataset; see :func:`simreal.privacy.fontdigits.write_font_digits`."""
    from simreal.privacy.fontdigits import write_font_digits

    return write_font_digits(*args, **kwargs)


make_callable(__name__, "train")
