"""One progress bar for training: epoch, batch, running loss, accuracy, samples per second.

It draws on a terminal only: with ``enabled="auto"`` it turns itself off when
the stream is not a TTY (a pipe, a file, CI), so logs stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import Literal, TextIO


class ProgressBar:
    """A single-line progress bar redrawn in place (``\\r``) at most every ``interval`` seconds.

    Parameters
    ----------
    total_epochs, steps_per_epoch : int
    enabled : bool or "auto"
        ``"auto"`` draws only when ``stream.isatty()``.
    stream : file-like, default ``sys.stderr``
    width : int, default 24
        Characters of the bar itself.
    """

    def __init__(self, total_epochs: int, steps_per_epoch: int, *, enabled: bool | Literal["auto"] = "auto",
                 stream: TextIO | None = None, width: int = 24, interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled == "auto":
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        elif not isinstance(enabled, bool):
            raise ValueError(f"progress must be True, False or 'auto', got {enabled!r}")
        self.enabled = enabled
        self.total_epochs = total_epochs
        self.steps_per_epoch = steps_per_epoch
        self.width = width
        self.interval = interval
        self._last_draw = 0.0
        self._epoch_start = time.perf_counter()

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._epoch_start = time.perf_counter()

    def update(self, step: int, samples: int, loss: float, accuracy: float | None, force: bool = False) -> None:
        """Redraw after ``step`` batches and ``samples`` samples of the current epoch."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < self.interval and step < self.steps_per_epoch:
            return
        self._last_draw = now
        fraction = step / max(self.steps_per_epoch, 1)
        filled = int(round(fraction * self.width))
        bar = "=" * max(filled - 1, 0) + (">" if 0 < filled < self.width else "=" * (filled > 0))
        rate = samples / max(now - self._epoch_start, 1e-9)
        text = (
            f"\repoch {self.epoch + 1}/{self.total_epochs} [{bar:<{self.width}}] "
            f"{step}/{self.steps_per_epoch}  loss {loss:.4f}"
        )
        if accuracy is not None:
            text += f"  acc {100 * accuracy:.2f}%"
        text += f"  {rate:,.0f} samples/s"
        self.stream.write(text)
        self.stream.flush()

    def end_epoch(self, summary: str) -> None:
        """Replace the bar with the epoch's one-line summary."""
        if not self.enabled:
            return
        self.stream.write("\r\033[K" + summary + "\n")
        self.stream.flush()
