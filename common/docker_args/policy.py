"""The orchestrator's policy, applied to the faithful spec of a server's args."""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

from common.container_spec import ArgIssue, ContainerSpec
from common.docker_args.run import INFO, WARNING
from common.docker_args.values import clean_path

# Labels under this prefix belong to the orchestrator (ownership, port, spec hash).
RESERVED_LABEL_PREFIX = "mcp-orchestrator."

_DOCKER_SOCKETS = {"/var/run/docker.sock", "/run/docker.sock"}


def orchestrated(spec: ContainerSpec) -> Tuple[ContainerSpec, Tuple[ArgIssue, ...]]:
    """The orchestrator's policy applied to a faithful spec.

    - no TTY: a TTY would corrupt the JSON-RPC byte stream (CRLF, echo);
    - stdin always open (the bridge needs it) and not tied to one attach, so a
      container-agent restart can re-attach to a running server;
    - not auto-removed: the orchestrator removes the container itself, so a crashed
      server's exit code and stderr survive for the dashboard;
    - named mcp-{server-id} by the orchestrator, not by --name;
    - no Docker restart policy: restarts (with back-off) are the scheduler's job;
    - labels under mcp-orchestrator. are the orchestrator's own (user ones are dropped);
    - a bind of the Docker socket is allowed but warned about.
    `--pull` and `-p` are kept for the agent and the config layer.
    """
    issues: List[ArgIssue] = []
    changes: Dict[str, object] = {"detach": True}
    if spec.tty:
        changes["tty"] = False
        issues.append(
            ArgIssue(
                WARNING,
                "-t",
                "-t/--tty is turned off: a TTY would corrupt the server's JSON-RPC stream (CRLF line endings, echo)",
            )
        )
    if not spec.stdin_open:
        changes["stdin_open"] = True
        issues.append(
            ArgIssue(
                WARNING,
                None,
                "no -i/--interactive: stdin is attached anyway, "
                "because an MCP stdio server reads its requests "
                'there; add "-i" to say so',
            )
        )
    if spec.auto_remove:
        changes["auto_remove"] = False
        issues.append(
            ArgIssue(
                INFO,
                "--rm",
                "--rm is not passed to Docker: the orchestrator "
                "removes the container itself, after keeping "
                "its exit code and last stderr lines",
            )
        )
    if spec.name:
        changes["name"] = None
        issues.append(
            ArgIssue(
                WARNING, "--name", f"--name {spec.name} is ignored: the orchestrator names containers mcp-{{server-id}}"
            )
        )
    if spec.detach:
        issues.append(
            ArgIssue(
                INFO,
                "-d",
                "-d has no effect: the orchestrator always creates containers detached and attaches to them itself",
            )
        )
    if spec.restart is not None:
        changes["restart"] = None
        if spec.restart.name != "no":
            issues.append(
                ArgIssue(
                    WARNING,
                    "--restart",
                    f"--restart {spec.restart.name} is ignored: the "
                    "orchestrator restarts a crashed server itself, with "
                    "back-off, and shows it as crash-looping",
                )
            )
    sockets = [v.source for v in spec.volumes if v.kind == "bind"]
    sockets += [m.source for m in spec.mounts if m.type == "bind"]
    for source in sorted({s for s in sockets if clean_path(s) in _DOCKER_SOCKETS}):
        issues.append(
            ArgIssue(
                WARNING,
                None,
                f"the bind of {source} gives the server control "
                "of the Docker engine, including the "
                "orchestrator's other containers",
            )
        )
    reserved = [k for k, _ in spec.labels if k.startswith(RESERVED_LABEL_PREFIX)]
    if reserved:
        changes["labels"] = tuple((k, v) for k, v in spec.labels if k not in reserved)
        issues.append(
            ArgIssue(
                WARNING,
                "-l",
                f"label {', '.join(reserved)} is dropped: "
                f"labels under {RESERVED_LABEL_PREFIX} are the "
                "orchestrator's own bookkeeping",
            )
        )
    return dataclasses.replace(spec, **changes), tuple(issues)  # type: ignore[arg-type]
