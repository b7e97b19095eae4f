"""What a `docker run` argument list asks Docker to create, as typed data.

`ContainerSpec` is the parsed, faithful meaning of the args (see `common.docker_args`
for the parser and the orchestrator's policy). This module also turns a spec into:

- `public_dict`: a JSON-able view for `validate --json` and the dashboard (env values
  masked);
- `create_kwargs`: keyword arguments for the Docker SDK's `containers.create`, the only
  place env values are revealed;
- `spec_hash`: a stable short hash for a drift-detecting container label.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from common.secrets import MASK, Secret
from common.spec_hash_key import installation_key

Pairs = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class ArgIssue:
    severity: str  # "error" | "warning" | "info"
    flag: Optional[str]  # the flag as the user wrote it, e.g. "--mount", "-t", or None
    message: str  # specific, actionable; never contains an env value


@dataclass(frozen=True)
class VolumeSpec:
    """One `-v`/`--volume` entry.

    `spec` is the text Docker receives in HostConfig.Binds, exactly as written (the CLI
    passes it through). An anonymous volume (`-v /data`) goes to Config.Volumes instead.
    """

    spec: str
    kind: str  # "bind" | "volume" | "anonymous"
    source: str  # host path, volume name, or "" for an anonymous volume
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class MountSpec:
    """One `--mount` entry (HostConfig.Mounts).

    Optional fields are None when the option was not given: the CLI sends an options
    block (BindOptions, VolumeOptions, TmpfsOptions) as soon as one of its keys is
    written, even with a default value, and parity needs the same.
    """

    type: str  # "bind" | "volume" | "tmpfs"
    target: str
    source: str = ""
    read_only: bool = False
    consistency: str = ""
    bind_propagation: Optional[str] = None
    bind_nonrecursive: Optional[bool] = None
    volume_nocopy: Optional[bool] = None
    volume_labels: Pairs = ()
    volume_driver: Optional[str] = None
    volume_options: Pairs = ()
    tmpfs_size: Optional[int] = None
    tmpfs_mode: Optional[int] = None

    def has_bind_options(self) -> bool:
        return self.bind_propagation is not None or self.bind_nonrecursive is not None

    def has_volume_options(self) -> bool:
        return (
            self.volume_nocopy is not None
            or bool(self.volume_labels)
            or self.volume_driver is not None
            or bool(self.volume_options)
        )

    def has_tmpfs_options(self) -> bool:
        return self.tmpfs_size is not None or self.tmpfs_mode is not None


@dataclass(frozen=True)
class PortBinding:
    """One published port (`-p`). host_port "" means Docker picks a free port."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: str = ""

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class DeviceMapping:
    path_on_host: str
    path_in_container: str
    permissions: str = "rwm"


@dataclass(frozen=True)
class GpuRequest:
    """One `--gpus` request (HostConfig.DeviceRequests)."""

    count: int = 0  # -1 = all
    driver: str = ""
    device_ids: Optional[Tuple[str, ...]] = None
    capabilities: Tuple[Tuple[str, ...], ...] = (("gpu",),)
    options: Pairs = ()


@dataclass(frozen=True)
class RestartPolicy:
    name: str  # "no" | "always" | "unless-stopped" | "on-failure"
    max_retries: int = 0


@dataclass(frozen=True)
class ContainerSpec:
    """What `docker create` would create from a `docker run` argument list.

    Tuples keep the order the arguments gave; pairs keep map-like data ordered (later
    entries win, as in Docker). None means "not given: Docker's default".
    """

    image: str
    command: Tuple[str, ...] = ()  # args after the image, untouched
    entrypoint: Optional[Tuple[str, ...]] = None  # None = image default; ("",) = cleared
    # --env-file entries (in file order), then -e entries (one per name, last value wins)
    env: Tuple[Tuple[str, Secret], ...] = ()
    # how many leading `env` entries came from --env-file (the CLI keeps their order)
    env_file_count: int = 0

    # streams and lifetime
    stdin_open: bool = False  # -i
    tty: bool = False  # -t
    detach: bool = False  # -d
    auto_remove: bool = False  # --rm
    name: Optional[str] = None
    restart: Optional[RestartPolicy] = None
    init: Optional[bool] = None
    stop_signal: Optional[str] = None
    # Config.StopTimeout: the SDK's containers.create cannot set it, so the agent passes
    # it to container.stop(timeout=...) instead (see create_kwargs).
    stop_timeout: Optional[int] = None
    healthcheck_disabled: bool = False  # --no-healthcheck

    # process
    user: Optional[str] = None
    working_dir: Optional[str] = None
    hostname: Optional[str] = None
    domainname: Optional[str] = None
    labels: Pairs = ()
    platform: Optional[str] = None
    pull: str = "missing"  # always | missing | never: honoured by the agent before create

    # filesystem
    volumes: Tuple[VolumeSpec, ...] = ()
    mounts: Tuple[MountSpec, ...] = ()
    tmpfs: Pairs = ()  # (container path, mount options)
    read_only: bool = False

    # network
    network: Optional[str] = None
    ports: Tuple[PortBinding, ...] = ()
    exposed: Tuple[str, ...] = ()  # "port/proto" from --expose
    extra_hosts: Tuple[str, ...] = ()  # "host:ip"
    dns: Tuple[str, ...] = ()
    dns_search: Tuple[str, ...] = ()
    dns_options: Tuple[str, ...] = ()

    # security
    privileged: bool = False
    cap_add: Tuple[str, ...] = ()  # normalised like the CLI: CAP_ prefix, sorted, unique
    cap_drop: Tuple[str, ...] = ()
    security_opt: Tuple[str, ...] = ()
    group_add: Tuple[str, ...] = ()
    devices: Tuple[DeviceMapping, ...] = ()
    gpus: Tuple[GpuRequest, ...] = ()
    sysctls: Pairs = ()
    ipc: Optional[str] = None
    pid: Optional[str] = None
    uts: Optional[str] = None
    userns: Optional[str] = None
    cgroupns: Optional[str] = None
    runtime: Optional[str] = None

    # resources (bytes, nano-CPUs, counts)
    memory: Optional[int] = None
    memory_swap: Optional[int] = None
    memory_reservation: Optional[int] = None
    memory_swappiness: Optional[int] = None
    shm_size: Optional[int] = None
    nano_cpus: Optional[int] = None
    cpu_shares: Optional[int] = None
    cpu_period: Optional[int] = None
    cpu_quota: Optional[int] = None
    cpuset_cpus: Optional[str] = None
    cpuset_mems: Optional[str] = None
    pids_limit: Optional[int] = None
    oom_kill_disable: Optional[bool] = None
    oom_score_adj: Optional[int] = None
    ulimits: Tuple[Ulimit, ...] = ()

    # logging
    log_driver: Optional[str] = None
    log_options: Pairs = ()

    def env_names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self.env)

    def public_dict(self) -> dict:
        """JSON-able view: env as names with masked values; nothing secret."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "env":
                out["env"] = [{"name": k, "value": MASK} for k, _ in value]
            elif f.name == "env_file_count":
                continue
            else:
                out[f.name] = _public(value)
        return out


def _public(value: Any) -> Any:
    """Dataclasses and tuples as JSON-able dicts and lists (Secrets masked)."""
    if isinstance(value, Secret):
        return MASK
    if dataclasses.is_dataclass(value):
        return {f.name: _public(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_public(v) for v in value]
    return value


# --- Docker SDK ------------------------------------------------------------------


def mount_api(m: MountSpec) -> dict:
    """The HostConfig.Mounts entry the docker CLI sends for a --mount."""
    out: dict[str, Any] = {"Type": m.type, "Target": m.target}
    if m.source:
        out["Source"] = m.source
    if m.read_only:
        out["ReadOnly"] = True
    if m.consistency:
        out["Consistency"] = m.consistency
    if m.has_bind_options():
        bind: dict[str, Any] = {}
        if m.bind_propagation:
            bind["Propagation"] = m.bind_propagation
        if m.bind_nonrecursive:
            bind["NonRecursive"] = True
        out["BindOptions"] = bind
    if m.has_volume_options():
        driver: dict[str, Any] = {}
        if m.volume_driver:
            driver["Name"] = m.volume_driver
        if m.volume_options:
            driver["Options"] = dict(m.volume_options)
        vol: dict[str, Any] = {"DriverConfig": driver}
        if m.volume_nocopy:
            vol["NoCopy"] = True
        if m.volume_labels:
            vol["Labels"] = dict(m.volume_labels)
        out["VolumeOptions"] = vol
    if m.has_tmpfs_options():
        tmpfs: dict[str, Any] = {}
        if m.tmpfs_size:
            tmpfs["SizeBytes"] = m.tmpfs_size
        if m.tmpfs_mode:
            tmpfs["Mode"] = m.tmpfs_mode
        out["TmpfsOptions"] = tmpfs
    return out


def create_kwargs(spec: ContainerSpec) -> dict:
    """kwargs for docker SDK `client.containers.create(**kwargs)`.

    Gives the same effective container as `docker create <same args>` (see the parity
    tests). The only place env values are revealed. Two things the SDK cannot express
    exactly, and what is done instead:

    - Config.StopTimeout (`--stop-timeout`): not settable through containers.create;
      the caller passes `spec.stop_timeout` to `container.stop(timeout=...)`.
    - The SDK declares every `volumes` entry in Config.Volumes as well as in
      HostConfig.Binds; for bind targets Docker ignores the declaration (the bind covers
      the path), and an anonymous volume is the same volume either way.
    """
    kw: dict[str, Any] = {"image": spec.image}
    if spec.command:
        kw["command"] = list(spec.command)
    if spec.entrypoint is not None:
        kw["entrypoint"] = list(spec.entrypoint)  # a list: the SDK would shlex-split a str
    if spec.env:
        kw["environment"] = [f"{k}={v.reveal()}" for k, v in spec.env]
    kw["stdin_open"] = spec.stdin_open
    kw["tty"] = spec.tty
    if spec.detach:
        # Like `docker run -d`: stdin is not tied to the first attach (StdinOnce false).
        kw["detach"] = True
    if spec.auto_remove:
        kw["auto_remove"] = True
    if spec.name:
        kw["name"] = spec.name
    restart = spec.restart or RestartPolicy("no")  # the CLI always sends one
    kw["restart_policy"] = {"Name": restart.name, "MaximumRetryCount": restart.max_retries}
    if spec.init is not None:
        kw["init"] = spec.init
    if spec.stop_signal:
        kw["stop_signal"] = spec.stop_signal
    if spec.healthcheck_disabled:
        kw["healthcheck"] = {"test": ["NONE"]}
    for attr, key in (
        ("user", "user"),
        ("working_dir", "working_dir"),
        ("hostname", "hostname"),
        ("domainname", "domainname"),
        ("platform", "platform"),
        ("network", "network_mode"),
        ("ipc", "ipc_mode"),
        ("pid", "pid_mode"),
        ("uts", "uts_mode"),
        ("userns", "userns_mode"),
        ("cgroupns", "cgroupns"),
        ("runtime", "runtime"),
        ("cpuset_cpus", "cpuset_cpus"),
        ("cpuset_mems", "cpuset_mems"),
    ):
        value = getattr(spec, attr)
        if value:
            kw[key] = value
    if spec.labels:
        kw["labels"] = dict(spec.labels)

    binds = [v.spec for v in spec.volumes]
    if binds:
        kw["volumes"] = binds
    if spec.mounts:
        kw["mounts"] = [mount_api(m) for m in spec.mounts]
    if spec.tmpfs:
        kw["tmpfs"] = dict(spec.tmpfs)
    if spec.read_only:
        kw["read_only"] = True

    ports: dict[str, list] = {}
    for p in spec.ports:
        ports.setdefault(p.key, []).append({"HostIp": p.host_ip, "HostPort": p.host_port})
    for key in spec.exposed:
        # An empty binding list declares the port (ExposedPorts) without publishing it.
        ports.setdefault(key, [])
    if ports:
        kw["ports"] = ports
    for attr in ("extra_hosts", "dns", "dns_search", "group_add", "cap_add", "cap_drop", "security_opt"):
        value = getattr(spec, attr)
        if value:
            kw[attr] = list(value)
    if spec.dns_options:
        kw["dns_opt"] = list(spec.dns_options)

    if spec.privileged:
        kw["privileged"] = True
    if spec.devices:
        kw["devices"] = [
            {"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container, "CgroupPermissions": d.permissions}
            for d in spec.devices
        ]
    if spec.gpus:
        kw["device_requests"] = [
            {
                "Driver": g.driver,
                "Count": g.count,
                "DeviceIDs": list(g.device_ids) if g.device_ids is not None else None,
                "Capabilities": [list(c) for c in g.capabilities],
                "Options": dict(g.options),
            }
            for g in spec.gpus
        ]
    if spec.sysctls:
        kw["sysctls"] = dict(spec.sysctls)

    for attr, key in (
        ("memory", "mem_limit"),
        ("memory_swap", "memswap_limit"),
        ("memory_reservation", "mem_reservation"),
        ("memory_swappiness", "mem_swappiness"),
        ("shm_size", "shm_size"),
        ("nano_cpus", "nano_cpus"),
        ("cpu_shares", "cpu_shares"),
        ("cpu_period", "cpu_period"),
        ("cpu_quota", "cpu_quota"),
        ("pids_limit", "pids_limit"),
        ("oom_kill_disable", "oom_kill_disable"),
        ("oom_score_adj", "oom_score_adj"),
    ):
        value = getattr(spec, attr)
        if value is not None:
            kw[key] = value
    if spec.ulimits:
        kw["ulimits"] = [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits]
    if spec.log_driver or spec.log_options:
        kw["log_config"] = {"Type": spec.log_driver or "", "Config": dict(spec.log_options)}
    return kw


# --- drift hash ------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """Only what differs from a default, so a field added later with a default keeps
    the hash of existing specs unchanged."""
    if isinstance(value, Secret):
        return value.reveal()
    if dataclasses.is_dataclass(value):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                default = object()  # required field: always included
            if v != default:
                out[f.name] = _canonical(v)
        return out
    if isinstance(value, (tuple, list)):
        return [_canonical(v) for v in value]
    return value


def spec_hash(spec: ContainerSpec, key: Optional[bytes] = None) -> str:
    """Stable short hex hash of the effective spec, env values included (a changed secret
    recreates the container). Keyed (HMAC-SHA256) with the installation's key, so the
    published hash cannot be used to test guesses of a secret. Same spec -> same hash
    across processes and restarts of one installation."""
    text = json.dumps(_canonical(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    mac = hmac.new(key if key is not None else installation_key(), text.encode("utf-8"), hashlib.sha256)
    return mac.hexdigest()[:16]


__all__ = [
    "ArgIssue",
    "ContainerSpec",
    "DeviceMapping",
    "GpuRequest",
    "MountSpec",
    "PortBinding",
    "RestartPolicy",
    "Ulimit",
    "VolumeSpec",
    "create_kwargs",
    "spec_hash",
]
