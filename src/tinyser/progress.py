"""A progress bar with ETA on stderr (stdout stays clean for --json output)."""
from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
_console = Console(stderr=True)


class Bar:
    """A bar advanced by hand: ``with Bar(100, "epochs") as bar: bar.advance()``.

    >>> with Bar(2, "demo", enabled=False) as bar:
    ...     bar.advance(2)
    """

    def __init__(self, total: int, description: str = "", enabled: bool = True):
        self._progress = None
        if enabled and _console.is_terminal:  # not a terminal: no bar to land among the results
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
            self._progress = Progress(*columns, console=_console)
            self._task = self._progress.add_task(description, total=total)

    def __enter__(self) -> Bar:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress:
            self._progress.stop()

    def advance(self, n: int = 1, description: str | None = None) -> None:
        if self._progress:
            kw = {} if description is None else {"description": description}
            self._progress.update(self._task, advance=n, **kw)


def track(items: Iterable[T], total: int | None = None, description: str = "",
          enabled: bool = True) -> Iterator[T]:
    """Iterate over ``items`` showing done/total, elapsed time and ETA.

    >>> list(track(range(3), enabled=False))
    [0, 1, 2]
    """
    n = total if total is not None else len(items)  # type: ignore[arg-type]
    with Bar(n, description, enabled) as bar:
        for item in items:
            yield item
            bar.advance()
