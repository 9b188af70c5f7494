"""Progress reporting: the only way code below the CLI shows anything to a person.

The runner is handed a ``Progress``; the CLI passes a ``RichProgress`` when stderr is a
terminal and output is not ``--json``, and ``NullProgress`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, total: int, description: str) -> None: ...
    def advance(self, n: int = 1, **fields: Any) -> None: ...
    def note(self, message: str) -> None: ...
    def stop(self) -> None: ...


class NullProgress:
    """Says nothing; collects notes so a caller can still read them."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1, **fields: Any) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)

    def stop(self) -> None:
        pass


class RichProgress:
    """Rows done of total, rate, ETA, cache hits, errors, tokens and cost, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int, description: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
            refresh_per_second=5,
        )
        self._progress.start()
        from rich.markup import escape

        # The description is read as markup (its column's "[bold]"): a dataset named
        # with brackets is shown as it is.
        self._task = self._progress.add_task(escape(description), total=total, rate="", info="")

    def advance(self, n: int = 1, **fields: Any) -> None:
        if self._progress is None:
            return
        task = self._progress.tasks[self._task]
        speed = task.speed
        info = "  ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items() if v)
        self._progress.update(
            self._task,
            advance=n,
            info=info,
            rate=f"{speed:,.1f} rows/s" if speed else "",
        )

    def note(self, message: str) -> None:
        from rich.text import Text

        from harness.numbers import controls_escaped

        # Text, not markup: a note may quote a run's name or an error, "[/x]" in which
        # raised MarkupError mid-run.
        self.console.print(Text(controls_escaped(message), style="yellow"), highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def call_event_notes(progress: Progress) -> Callable[[str, dict[str, Any]], None]:
    """The call path's ``on_event`` that tells ``progress`` what a person should hear of:
    a corrupt cache entry, called again."""

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "cache_corrupt":
            progress.note(
                f"cache entry {data['key'][:12]} is corrupt; calling the model again "
                f"({data['error']})"
            )

    return on_event
