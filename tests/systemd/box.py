"""A Debian container booted with systemd as PID 1, driven with `docker exec`.

The recipe of ../shared TESTING.md: SYS_ADMIN and NET_ADMIN, no seccomp or AppArmor
profile, the host's cgroup tree, tmpfs on /run. The host's Docker socket is mounted so
the container-agent inside manages sibling containers on the host engine; the project
(read-only) and a wheelhouse are mounted so `make install` runs offline.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from tests.harness.waiting import wait_for

SOURCE = "/src"
WHEELS = "/wheels"


class BoxError(AssertionError):
    pass


@dataclass
class Box:
    name: str

    @classmethod
    def boot(
        cls,
        name: str,
        image: str,
        *,
        project: Path,
        wheels: Path,
        labels: dict[str, str],
        docker_socket: str = "/run/docker.sock",
    ) -> "Box":
        cmd = [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--cgroupns=host",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "-v",
            f"{docker_socket}:/run/docker.sock",
            "-v",
            f"{project}:{SOURCE}:ro",
            "-v",
            f"{wheels}:{WHEELS}:ro",
            "-e",
            "container=docker",
        ]
        for key, value in labels.items():
            cmd += ["--label", f"{key}={value}"]
        subprocess.run(cmd + [image, "/lib/systemd/systemd"], check=True, capture_output=True, text=True, timeout=60)
        box = cls(name)
        wait_for(box.booted, 90, "systemd to finish booting", interval=0.25)
        return box

    def booted(self) -> bool:
        state = self.sh("systemctl is-system-running", check=False).stdout.strip()
        return state in ("running", "degraded")

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", "-v", self.name], capture_output=True, timeout=60)

    # --- commands -------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        cmd = ["docker", "exec"]
        if input is not None:
            cmd.append("-i")
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        result = subprocess.run(cmd + [self.name, *argv], input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise BoxError(
                f"{' '.join(argv)!r} exited with {result.returncode}\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
            )
        return result

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(["bash", "-c", script], **kwargs)

    def write(self, path: str, text: str, mode: str = "0644", owner: str = "root:root") -> None:
        self.run(
            [
                "bash",
                "-c",
                'umask 077 && mkdir -p "$(dirname "$0")" && cat >"$0" && chmod "$1" "$0" && chown "$2" "$0"',
                path,
                mode,
                owner,
            ],
            input=text,
        )

    def python(self, script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a Python script (text) with the container's own python3."""
        return self.run(["python3", "-", *args], input=script, check=False, timeout=timeout)

    # --- systemd ---------------------------------------------------------------------

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def main_pid(self, unit: str) -> int:
        return int(self.show(unit, "MainPID")["MainPID"])

    def active_state(self, unit: str) -> str:
        return self.show(unit, "ActiveState")["ActiveState"]

    def journal(self, *args: str) -> list[dict]:
        """Journal entries (JSON) matching journalctl `args`."""
        out = self.run(["journalctl", "--no-pager", "-o", "json", *args], timeout=60).stdout
        entries = []
        for line in out.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def journal_text(self) -> str:
        """The whole journal as exported (every field of every entry)."""
        return self.run(["journalctl", "--no-pager", "-o", "export"], timeout=60).stdout


def message_of(entry: dict) -> str:
    """The MESSAGE field of a journal entry (journald exports binary as byte lists)."""
    value = entry.get("MESSAGE", "")
    if isinstance(value, list):
        return bytes(value).decode("utf-8", "replace")
    return str(value)
