"""The file-descriptor store protocol between a process and its supervisor, over real
Unix sockets: the launcher keeps what the process hands over (FDSTORE=1), gives up what
it is told to (FDSTOREREMOVE=1), and passes the kept ones back the way systemd does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from common.service import sd_notify
from services.cli.fdstore import LauncherFdStore

CHILD = r"""
import os, socket, sys
from common import fdstore
sock = fdstore.take("bridge-1")
print(sock.getsockname()[1], fdstore.unclaimed(), os.environ.get("LISTEN_FDS"), fdstore.kept_secret("key").hex())
"""


def test_the_launcher_keeps_handed_sockets_and_passes_them_back(tmp_path, monkeypatch):
    store = LauncherFdStore(tmp_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(store.path))
        assert sd_notify("FDSTORE=1\nFDNAME=bridge-1", fds=(listener.fileno(),))
        spare = socket.socket()
        assert sd_notify("FDSTORE=1\nFDNAME=bridge-2", fds=(spare.fileno(),))
        assert sd_notify("READY=1")  # read and ignored
        assert sd_notify("FDSTOREREMOVE=1\nFDNAME=bridge-2")
        spare.close()
        store.poll()
        assert list(store.kept) == ["bridge-1"]
        listener.close()  # only the launcher holds it now: it still listens
        waiting = socket.create_connection(("127.0.0.1", port), timeout=5)  # in the backlog

        env = {**os.environ, **store.child_environment(), "PYTHONPATH": os.getcwd()}
        done = subprocess.run(
            [sys.executable, "-c", CHILD],
            env=env,
            preexec_fn=store.prepare_child(),
            close_fds=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        got_port, unclaimed, listen_fds, key = done.stdout.split(" ", 3)
        assert int(got_port) == port and unclaimed == "[]" and listen_fds == "None"  # taken, then cleared
        store.poll()
        assert "key" in store.kept  # the child's secret went to the launcher, as a memory file
        assert os.pread(store.kept["key"], 32, 0).hex() == key.strip()
        waiting.close()
    finally:
        store.close()
    assert not store.path.exists()
