"""Progress bars (rich) with throughput and ETA, and per-folder log files."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")

_console = Console(stderr=True)


class RateColumn(ProgressColumn):
    """Items per second, with a unit name."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"? {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:.2f} {self.unit}/s", style="progress.data.speed")


def make_progress(unit: str = "it", disable: bool = False) -> Progress:
    """A rich Progress showing count, bar, rate, elapsed and ETA on stderr (``disable`` hides it)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=_console,
        transient=False,
        disable=disable,
    )


def track(items: Iterable[T], total: int | None, description: str, unit: str = "it") -> Iterator[T]:
    """Iterate ``items`` under a progress bar."""
    with make_progress(unit) as prog:
        task = prog.add_task(description, total=total)
        for item in items:
            yield item
            prog.advance(task)


def folder_logger(folder: str | Path, name: str, filename: str = "log.txt") -> logging.Logger:
    """A logger that appends to ``folder/filename`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"simreal.{name}.{folder.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    path = str((folder / filename).resolve())
    if not any(getattr(h, "baseFilename", None) == path for h in logger.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


def close_logger(logger: logging.Logger) -> None:
    """Close and detach the logger's file handlers."""
    for h in list(logger.handlers):
        h.close()
        logger.removeHandler(h)
