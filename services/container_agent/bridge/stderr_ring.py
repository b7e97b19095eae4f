"""The last lines a server wrote to stderr, kept for the dashboard and crash reports."""

from __future__ import annotations

from collections import deque

# A line longer than this is cut: the tail is for reading, not for archiving.
MAX_LINE_CHARS = 2000


class StderrRing:
    __slots__ = ("_lines",)

    def __init__(self, size: int) -> None:
        self._lines: deque[str] = deque(maxlen=size)

    def append(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " [cut]"
        self._lines.append(text)

    def tail(self, n: int) -> list[str]:
        if n <= 0:
            return []
        lines = list(self._lines)
        return lines[-n:]

    def clear(self) -> None:
        self._lines.clear()
