"""mcp.config.json: the MCP servers to run, as Claude Desktop, Cline and Amazon Q write it.

Loading never raises for bad content: every problem becomes a `ConfigIssue` that
names the server, the flag or key, and what to do. A server with an error is left
out of `McpConfig.servers` while the others stay valid, so one typo never takes
the rest of the file down with it. Servers that are not Docker-based (`npx …`,
URL-only remote servers) are skipped with a notice.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

from common import server_ids
from common.container_spec import ContainerSpec, spec_hash
from common.docker_args import orchestrated, parse_docker_run
from common.secrets import Secret
from common.swarm_service import service_issues

if TYPE_CHECKING:
    from common.settings import Settings

REMOTE_TYPES = {"sse", "http", "streamable-http", "streamablehttp", "streamable_http"}
# Keys the MCP clients write that mean nothing to the orchestrator but are kept.
CLIENT_KEYS = {
    "alwaysAllow",
    "timeout",
    "type",
    "transportType",
    "autoStart",
    "description",
    "name",
    "cwd",
    "envFile",
    "networkTimeout",
    "trust",
    "includeTools",
    "excludeTools",
}


@dataclass(frozen=True)
class ConfigIssue:
    severity: str  # "error" | "warning" | "info"
    message: str
    server_id: Optional[str] = None
    flag: Optional[str] = None

    def __str__(self) -> str:
        where = f"server {self.server_id!r}: " if self.server_id is not None else ""
        what = f"{self.flag}: " if self.flag else ""
        return f"{where}{what}{self.message}"

    def public_dict(self) -> dict:
        return {"severity": self.severity, "server_id": self.server_id, "flag": self.flag, "message": self.message}


@dataclass(frozen=True)
class HttpUpstream:
    """A server that speaks MCP over HTTP inside its container: reverse-proxied."""

    port: int
    path: str = "/mcp"


@dataclass(frozen=True)
class ServerConfig:
    server_id: str
    disabled: bool
    spec: ContainerSpec  # what the container-agent creates (policy applied)
    spec_hash: str
    auto_approve: tuple[str, ...] = ()
    http: Optional[HttpUpstream] = None
    replicas: Optional[int] = None  # "orchestrator.replicas"; None: [cluster] default_replicas
    client_keys: Mapping[str, Any] = field(default_factory=dict)

    @property
    def container_name(self) -> str:
        return server_ids.container_name(self.server_id)

    def public_dict(self) -> dict:
        return {
            "server_id": self.server_id,
            "disabled": self.disabled,
            "container_name": self.container_name,
            "spec": self.spec.public_dict(),
            "spec_hash": self.spec_hash,
            "auto_approve": list(self.auto_approve),
            "transport": "http" if self.http else "stdio",
            "http": {"port": self.http.port, "path": self.http.path} if self.http else None,
            "replicas": self.replicas,
            "client_keys": dict(self.client_keys),
        }


@dataclass(frozen=True)
class McpConfig:
    source: str
    servers: Mapping[str, ServerConfig]  # valid Docker-based servers, disabled included
    invalid: tuple[str, ...] = ()  # Docker-based servers with errors
    skipped: Mapping[str, str] = field(default_factory=dict)  # not Docker-based: id -> reason
    issues: tuple[ConfigIssue, ...] = ()
    readable: bool = True  # False: the file itself could not be used

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.readable and not self.errors

    @property
    def enabled(self) -> dict[str, ServerConfig]:
        return {k: v for k, v in self.servers.items() if not v.disabled}

    def public_dict(self) -> dict:
        return {
            "source": self.source,
            "ok": self.ok,
            "servers": {k: v.public_dict() for k, v in self.servers.items()},
            "invalid": list(self.invalid),
            "skipped": dict(self.skipped),
            "issues": [i.public_dict() for i in self.issues],
        }


# --- file level ----------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _json_error_hint(text: str, exc: json.JSONDecodeError) -> str:
    line = text.splitlines()[exc.lineno - 1] if 0 < exc.lineno <= len(text.splitlines()) else ""
    stripped = line.strip()
    if stripped.startswith("//") or stripped.startswith("#") or "/*" in stripped:
        return " (JSON does not allow comments: remove them)"
    if stripped.startswith("}") or stripped.startswith("]"):
        return " (a trailing comma before this line?)"
    return ""


def read_config_file(path: Path) -> tuple[Optional[dict], list[ConfigIssue]]:
    """The parsed top-level object, or None and the reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [ConfigIssue("error", f"{path}: file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ConfigIssue("error", f"{path}: cannot read: {exc}")]
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return None, [
            ConfigIssue(
                "error",
                f"{path}: key {exc.args[0]!r} appears twice in one "
                f"object; JSON readers would silently keep only the "
                f"last one",
            )
        ]
    except RecursionError:
        return None, [ConfigIssue("error", f"{path}: the JSON is nested too deeply")]
    except json.JSONDecodeError as exc:
        return None, [
            ConfigIssue(
                "error",
                f"{path}: not valid JSON at line {exc.lineno} column "
                f"{exc.colno}: {exc.msg}{_json_error_hint(text, exc)}",
            )
        ]
    if not isinstance(data, dict):
        return None, [ConfigIssue("error", f'{path}: the top level must be a JSON object with an "mcpServers" object')]
    servers = data.get("mcpServers")
    if servers is None:
        hint = ' (found "servers", VS Code\'s key: rename it to "mcpServers")' if "servers" in data else ""
        return None, [ConfigIssue("error", f'{path}: no "mcpServers" object{hint}')]
    if not isinstance(servers, dict):
        return None, [
            ConfigIssue("error", f'{path}: "mcpServers" must be an object mapping server ids to their settings')
        ]
    return data, []


# --- one server --------------------------------------------------------------------


def _remote_reason(entry: Mapping[str, Any]) -> Optional[str]:
    kind = str(entry.get("type") or entry.get("transportType") or "").lower()
    if "command" not in entry and ("url" in entry or "serverUrl" in entry or kind in REMOTE_TYPES):
        return "a remote server (URL only): there is nothing to run here"
    return None


def _str_list(value: Any, what: str, sid: str, issues: list[ConfigIssue]) -> Optional[list[str]]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.append(ConfigIssue("error", f'"{what}" must be an array of strings', sid))
        return None
    return value


def _env_block(value: Any, sid: str, issues: list[ConfigIssue]) -> Optional[dict[str, Secret]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        issues.append(ConfigIssue("error", '"env" must be an object of NAME: "value" pairs', sid))
        return None
    env: dict[str, Secret] = {}
    ok = True
    for name, val in value.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            issues.append(ConfigIssue("error", f"env name {name!r} is not a valid environment variable name", sid))
            ok = False
        elif not isinstance(val, str):
            # Never echo the value: it may be a secret typed without quotes.
            issues.append(ConfigIssue("error", f"env {name} must be a string (put the value in quotes)", sid))
            ok = False
        else:
            env[name] = Secret(val)
    return env if ok else None


MAX_REPLICAS = 100
ENGINE_DOCKER = "docker"
ENGINE_SWARM = "swarm"


@dataclass(frozen=True)
class Orchestration:
    """The server's "orchestrator" block (ours): how it is run, beyond its `docker run`."""

    http: Optional[HttpUpstream] = None
    replicas: Optional[int] = None  # None: [cluster] default_replicas


def _orchestration(entry: Mapping[str, Any], sid: str, issues: list[ConfigIssue]) -> Optional[Orchestration]:
    """The "orchestrator" block, or None (and an issue) when it is wrong."""
    opts = entry.get("orchestrator")
    if opts is None:
        return Orchestration()
    if not isinstance(opts, dict) or set(opts) - {"http", "replicas"}:
        issues.append(ConfigIssue("error", '"orchestrator" must be an object with "http" and/or "replicas"', sid))
        return None
    replicas = opts.get("replicas")
    if replicas is not None and (
        not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= MAX_REPLICAS
    ):
        issues.append(
            ConfigIssue(
                "error",
                f'"orchestrator.replicas" must be a whole number from 1 to {MAX_REPLICAS} (copies of the server '
                "across the swarm's nodes)",
                sid,
            )
        )
        return None
    http = opts.get("http")
    if http is None:
        return Orchestration(replicas=replicas)
    if not isinstance(http, dict) or set(http) - {"port", "path"}:
        issues.append(ConfigIssue("error", '"orchestrator.http" must be {"port": N, "path": "/mcp"}', sid))
        return None
    port, path = http.get("port"), http.get("path", "/mcp")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        issues.append(
            ConfigIssue(
                "error", '"orchestrator.http.port" must be the container port (1-65535) the server listens on', sid
            )
        )
        return None
    if not isinstance(path, str) or not path.startswith("/"):
        issues.append(ConfigIssue("error", "\"orchestrator.http.path\" must start with '/'", sid))
        return None
    return Orchestration(http=HttpUpstream(port=port, path=path), replicas=replicas)


def _port_conflicts(spec: ContainerSpec, port_range: tuple[int, int]) -> list[str]:
    """Host ports of -p that fall in the range the bridges use."""
    lo, hi = port_range
    conflicts = []
    for binding in spec.ports:
        if not binding.host_port:
            continue  # docker picks an ephemeral port, outside our range by default
        first, _, last = binding.host_port.partition("-")
        if int(first) <= hi and int(last or first) >= lo:
            conflicts.append(binding.host_port)
    return conflicts


def load_server(
    server_id: str,
    entry: Any,
    *,
    base_dir: Path,
    environ: Mapping[str, str],
    port_range: tuple[int, int],
    engine: str = ENGINE_DOCKER,
) -> tuple[Optional[ServerConfig], Optional[str], list[ConfigIssue]]:
    """(server, skip_reason, issues) for one entry of mcpServers. With the swarm engine,
    a flag a Swarm service cannot express is an error of the server."""
    issues: list[ConfigIssue] = []
    sid = server_id
    problem = server_ids.problem(sid)
    if problem:
        return None, None, [ConfigIssue("error", problem, sid)]
    if not isinstance(entry, dict):
        return None, None, [ConfigIssue("error", "each server must be a JSON object", sid)]

    remote = _remote_reason(entry)
    if remote:
        return None, remote, [ConfigIssue("info", f"skipped: {remote}", sid)]
    command = entry.get("command")
    if not isinstance(command, str) or not command:
        return None, None, [ConfigIssue("error", '"command" is missing; it must be "docker"', sid)]
    if os.path.basename(command) not in ("docker", "docker.exe"):
        reason = f"command {command!r} is not docker: only Docker-based servers are run by the orchestrator"
        return None, reason, [ConfigIssue("info", f"skipped: {reason}", sid)]

    args = _str_list(entry.get("args", []), "args", sid, issues)
    env = _env_block(entry.get("env"), sid, issues)
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        issues.append(ConfigIssue("error", '"disabled" must be true or false', sid))
    auto_approve = _str_list(entry.get("autoApprove", []), "autoApprove", sid, issues)
    if "alwaysAllow" in entry:
        _str_list(entry["alwaysAllow"], "alwaysAllow", sid, issues)
    orchestration = _orchestration(entry, sid, issues)
    if args is None or env is None or orchestration is None or issues:
        return None, None, issues

    if args[:1] == ["run"]:
        run_args = args[1:]
    elif args[:2] == ["container", "run"]:
        run_args = args[2:]
    else:
        first = args[0] if args else "nothing"
        return (
            None,
            None,
            [ConfigIssue("error", f'"args" must start with "run" (as in docker run ...), not {first!r}', sid)],
        )

    parsed = parse_docker_run(run_args, env_block=env, process_env=environ, base_dir=base_dir)
    issues.extend(ConfigIssue(i.severity, i.message, sid, i.flag) for i in parsed.issues)
    if parsed.spec is None:
        return None, None, issues
    spec, policy = orchestrated(parsed.spec)
    issues.extend(ConfigIssue(i.severity, i.message, sid, i.flag) for i in policy)
    conflicts = _port_conflicts(spec, port_range)
    if conflicts:
        issues.append(
            ConfigIssue(
                "error",
                f"host port(s) {', '.join(conflicts)} lie in the orchestrator's port range "
                f"{port_range[0]}-{port_range[1]}, which the bridges use",
                sid,
                "-p",
            )
        )
        return None, None, issues
    if engine == ENGINE_SWARM:
        swarm_issues = service_issues(spec)
        issues.extend(ConfigIssue(i.severity, i.message, sid, i.flag) for i in swarm_issues)
        if any(i.severity == "error" for i in swarm_issues):
            return None, None, issues
    elif orchestration.replicas not in (None, 1):
        issues.append(
            ConfigIssue(
                "info",
                '"orchestrator.replicas" counts only with [cluster] engine = swarm: on one host each server '
                "runs one container",
                sid,
            )
        )
    client_keys = {k: v for k, v in entry.items() if k in CLIENT_KEYS}
    server = ServerConfig(
        server_id=sid,
        disabled=disabled,
        spec=spec,
        spec_hash=spec_hash(spec),
        auto_approve=tuple(auto_approve or ()),
        http=orchestration.http,
        replicas=orchestration.replicas,
        client_keys=client_keys,
    )
    return server, None, issues


def load_config(
    path: os.PathLike | str,
    *,
    port_range: tuple[int, int] = (8000, 9000),
    environ: Optional[Mapping[str, str]] = None,
    engine: str = ENGINE_DOCKER,
) -> McpConfig:
    """Read and validate mcp.config.json. Never raises for bad content."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    data, issues = read_config_file(path)
    if data is None:
        return McpConfig(source=str(path), servers={}, issues=tuple(issues), readable=False)

    servers: dict[str, ServerConfig] = {}
    invalid: list[str] = []
    skipped: dict[str, str] = {}
    folded: dict[str, str] = {}
    base_dir = path.resolve().parent
    for sid, entry in data["mcpServers"].items():
        clash = folded.get(sid.lower())
        if clash is not None:
            issues.append(
                ConfigIssue(
                    "error",
                    f"differs from server {clash!r} only in letter "
                    f"case; the two would clash in container and AWS "
                    f"names",
                    sid,
                )
            )
            invalid.append(sid)
            continue
        folded[sid.lower()] = sid
        server, skip, server_issues = load_server(
            sid, entry, base_dir=base_dir, environ=environ, port_range=port_range, engine=engine
        )
        disabled = isinstance(entry, dict) and entry.get("disabled") is True
        if disabled:
            # A disabled server runs nothing: its problems cannot hurt, so they only warn.
            server_issues = [
                ConfigIssue(
                    "warning" if i.severity == "error" else i.severity, f"(disabled) {i.message}", i.server_id, i.flag
                )
                for i in server_issues
            ]
        issues.extend(server_issues)
        if server is not None:
            servers[sid] = server
        elif skip is not None:
            skipped[sid] = skip
        elif not disabled:
            invalid.append(sid)
    return McpConfig(source=str(path), servers=servers, invalid=tuple(invalid), skipped=skipped, issues=tuple(issues))


def load_config_for(path: os.PathLike | str, settings: "Settings") -> McpConfig:
    """load_config with what the settings decide: the bridges' port range and the engine."""
    service = settings.service
    return load_config(
        path, port_range=(service.port_range_start, service.port_range_end), engine=settings.cluster.engine
    )
