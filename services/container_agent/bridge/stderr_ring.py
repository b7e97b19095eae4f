"""The last lines a server wrote to stderr, kept for the dashboard and crash reports."""

from __future__ import annotations

from collections import deque

from common.secrets import shown


class StderrRing:
    __slots__ = ("_lines",)

    def __init__(self, size: int) -> None:
        self._lines: deque[str] = deque(maxlen=size)

    def append(self, line: bytes) -> None:
        # Masked and cut once, here: the tail is for reading, not for archiving.
        self._lines.append(shown(line.decode("utf-8", "replace")))

    def tail(self, n: int) -> list[str]:
        if n <= 0:
            return []
        lines = list(self._lines)
        return lines[-n:]

    def clear(self) -> None:
        self._lines.clear()
