"""A small progress line on stderr: done/total, rate, ETA and free-form figures.

Redrawn in place on a terminal, one line every ``every_s`` seconds otherwise (log
files, CI), so long runs show that they are moving without flooding the log.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    def __init__(self, total: Optional[int], desc: str, unit: str = "it", *,
                 every_s: float = 10.0, stream: Optional[TextIO] = None, enabled: bool = True,
                 initial: int = 0):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s = 0.2 if self.tty else every_s
        self.done = initial
        self._initial = initial
        self._start = time.perf_counter()
        self._last = -1e9
        self._drawn = None  # the count last drawn
        self.figures = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1, figures: str = "") -> None:
        self.done += n
        if figures:
            self.figures = figures
        now = time.perf_counter()
        if now - self._last >= self.every_s or (self.total and self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        if not self.enabled:
            return
        self._drawn = self.done
        elapsed = now - self._start
        rate = (self.done - self._initial) / elapsed if elapsed > 0 else 0.0
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            head = f"{self.desc}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%)"
            tail = f", ETA {_clock(eta)}" if eta != float("inf") else ""
        else:
            head, tail = f"{self.desc}: {self.done}", ""
        line = f"{head}, {rate:.2f} {self.unit}/s, {_clock(elapsed)}{tail}"
        if self.figures:
            line += f" | {self.figures}"
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn != self.done:
            self._draw(time.perf_counter())
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
