"""A progress bar for long block scans (the first discovery of a protocol's accounts over its whole history).

Drawn by rich on stderr, and only when stderr is a terminal and the scan is long; piped or logged output
gets nothing extra (the log keeps its ``eth_getLogs progress`` lines).
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Scans shorter than this many blocks finish in a request or two: no bar.
PROGRESS_BAR_MIN_BLOCKS = 20_000


class BlockScanProgress:
    """``on_progress(done_block, to_block)`` callback of ``pipeline.run_snapshot`` drawing a bar; a context manager.

    The scan calls it first with ``done_block = from_block - 1`` (nothing done), then after each range.
    """

    def __init__(self, label: str, console: Console | None = None, *, min_blocks: int = PROGRESS_BAR_MIN_BLOCKS) -> None:
        self.label = label
        self.console = console if console is not None else Console(stderr=True)
        self.min_blocks = min_blocks
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._start: int | None = None

    @property
    def enabled(self) -> bool:
        """Whether a bar can be drawn at all (the console is a terminal)."""
        return self.console.is_terminal

    def __call__(self, done_block: int, to_block: int) -> None:
        if not self.enabled:
            return
        if self._start is None:
            self._start = done_block  # the block before the first one scanned
        total = to_block - self._start
        if self._progress is None:
            if total < self.min_blocks:
                return
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("blocks"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task(f"{self.label}: scanning logs", total=total)
        if self._task is not None:
            self._progress.update(self._task, completed=done_block - self._start, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> BlockScanProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
