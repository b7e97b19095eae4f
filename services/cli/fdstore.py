"""`mcp-orchestrator run` as the supervisor that keeps a child's listening sockets.

The launcher gives the container-agent a $NOTIFY_SOCKET of its own, as systemd does,
and keeps the sockets it hands over (`FDSTORE=1`, `FDNAME=`; `FDSTOREREMOVE=1` gives
one up). When the child dies and is started again, it gets them back the way systemd
passes them (common/fdstore.py reads them): fds 3, 4, ... and $LISTEN_FDS,
$LISTEN_FDNAMES. Other messages (READY=1, WATCHDOG=1, STATUS=) are read and ignored.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import Callable

_FIRST_FD = 3
_HIGH_FD = 1024  # where the kept fds are moved first in the child, out of the way
MAX_KEPT = 1024  # as the unit's FileDescriptorStoreMax=


class LauncherFdStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / f"notify-{os.getpid()}.sock"
        if self.path.exists():
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._sock.setblocking(False)
        self.kept: dict[str, int] = {}

    def poll(self) -> None:
        """Take every message waiting on the notify socket."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, 4096, 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode("utf-8", "replace").splitlines() if "=" in line)
            name = fields.get("FDNAME", "")
            if (
                fields.get("FDSTORE") == "1"
                and name
                and len(fds) == 1
                and (name in self.kept or len(self.kept) < MAX_KEPT)
            ):
                os.set_inheritable(fds[0], False)
                old = self.kept.pop(name, None)
                if old is not None:
                    os.close(old)
                self.kept[name] = fds[0]
                continue
            for fd in fds:  # not for keeping
                os.close(fd)
            if fields.get("FDSTOREREMOVE") == "1" and name in self.kept:
                os.close(self.kept.pop(name))

    def child_environment(self) -> dict[str, str]:
        """What the child's environment needs: the notify socket, and the kept sockets'
        names in the order prepare_child places them."""
        env = {"NOTIFY_SOCKET": str(self.path)}
        if self.kept:
            env["LISTEN_FDS"] = str(len(self.kept))
            env["LISTEN_FDNAMES"] = ":".join(self.kept)
        return env

    def prepare_child(self) -> Callable[[], None]:
        """A function to run in the child before exec that puts the kept sockets at fds
        3, 4, ... as inheritable copies. Start the child with close_fds=False: every
        other descriptor of the launcher is close-on-exec (PEP 446), so only these pass."""
        fds = list(self.kept.values())

        def place() -> None:
            # First above every fd in use, then down to 3.. (a kept fd may sit at 3).
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, _HIGH_FD) for fd in fds]
            for i, fd in enumerate(high):
                os.dup2(fd, _FIRST_FD + i)  # inheritable
                os.close(fd)

        return place

    def close(self) -> None:
        for fd in self.kept.values():
            os.close(fd)
        self.kept.clear()
        self._sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
