"""Noticing that a file changed, by polling its status (no inotify needed).

Polling `stat` once a second is dependable everywhere (editors that replace the file,
bind mounts, network file systems) and costs nothing. A change of inode, size or
modification time counts, and so does the file appearing or disappearing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

Signature = Optional[tuple[int, int, int, int]]


def signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileWatch:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._last = signature(self.path)

    def changed(self) -> bool:
        """True once for each change since the last call (or since creation)."""
        now = signature(self.path)
        if now == self._last:
            return False
        self._last = now
        return True

    def refresh(self) -> None:
        """Call just before reading the file: changes after this moment are noticed."""
        self._last = signature(self.path)
