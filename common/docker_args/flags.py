"""Every flag of `docker run --help`, in one table.

A flag is supported (its entry names the handler that reads its value), accepted
without effect, or refused; the last two carry the reason shown to the user. Adding a
flag is adding its entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from common.docker_args import env_labels, fields, host_access, mounts, networking
from common.docker_args.run import Handler


@dataclass(frozen=True)
class Flag:
    name: str  # canonical long name
    short: Optional[str]
    takes_value: bool
    handler: Optional[Handler] = None  # what a supported flag does with its value
    no_effect: Optional[str] = None  # accepted, but changes nothing in the container
    unsupported: Optional[str] = None  # why the orchestrator refuses it
    secret: bool = False  # its value may be a secret: messages show the name only

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.handler, self.no_effect, self.unsupported)) != 1:
            raise ValueError(f"--{self.name} needs exactly one of a handler, a no-effect reason, a refusal reason")


def _value(name: str, handler: Handler, short: Optional[str] = None, secret: bool = False) -> Flag:
    return Flag(name, short, True, handler=handler, secret=secret)


def _switch(name: str, field_name: str, short: Optional[str] = None) -> Flag:
    """A boolean flag (`-i`, `--rm=false`) that sets one field of the spec."""
    return Flag(name, short, False, handler=fields.bool_field(field_name))


def _no_effect(name: str, short: Optional[str], takes_value: bool, why: str) -> Flag:
    return Flag(name, short, takes_value, no_effect=why)


def _refused(name: str, short: Optional[str], takes_value: bool, why: str) -> Flag:
    return Flag(name, short, takes_value, unsupported=why)


_V, _B = True, False  # takes a value / is a boolean, for flags without a handler
_ATTACHED_CLI = "it only affects an attached docker CLI; the orchestrator attaches to the container itself"
_ADDRESSES = "static addresses, aliases and links need network endpoint settings that the orchestrator does not manage"
_BLKIO = "block-I/O limits are not supported by the orchestrator"
_HEALTH = (
    "the orchestrator checks a server's health through its MCP bridge; put a "
    "HEALTHCHECK in the image if Docker should run one"
)
_WINDOWS = "it applies to Windows containers only"
_RT = "real-time CPU scheduling is not supported by the orchestrator"

FLAGS = (
    # supported
    _value("add-host", networking.add_host),
    _value("cap-add", host_access.cap_add),
    _value("cap-drop", host_access.cap_drop),
    _value("cgroupns", fields.namespace_mode("cgroupns", ("", "host", "private"), container_ok=False)),
    _value("cpu-period", fields.int_field("cpu_period", 0)),
    _value("cpu-quota", fields.int_field("cpu_quota", -1)),
    _value("cpu-shares", fields.int_field("cpu_shares", 0), short="c"),
    _value("cpus", fields.cpus),
    _value("cpuset-cpus", fields.cpuset("cpuset_cpus")),
    _value("cpuset-mems", fields.cpuset("cpuset_mems")),
    _switch("detach", "detach", short="d"),
    _value("device", host_access.device),
    _value("dns", networking.dns),
    _value("dns-option", networking.dns_option),
    _value("dns-search", networking.dns_search),
    _value("domainname", fields.string_field("domainname")),
    _value("entrypoint", fields.entrypoint),
    _value("env", env_labels.env, short="e", secret=True),
    _value("env-file", env_labels.env_file),
    _value("expose", networking.expose),
    _value("gpus", host_access.gpus),
    _value("group-add", host_access.group_add),
    _value("hostname", fields.string_field("hostname"), short="h"),
    _switch("init", "init"),
    _switch("interactive", "stdin_open", short="i"),
    _value("ipc", fields.namespace_mode("ipc", ("", "none", "private", "shareable", "host"), container_ok=True)),
    _value("label", env_labels.label, short="l"),
    _value("label-file", env_labels.label_file),
    _value("log-driver", fields.log_driver),
    _value("log-opt", fields.log_opt),
    _value("memory", fields.size_field("memory"), short="m"),
    _value("memory-reservation", fields.size_field("memory_reservation")),
    _value("memory-swap", fields.size_field("memory_swap", unlimited=True)),
    _value("memory-swappiness", fields.int_field("memory_swappiness", 0, 100, extra=(-1,))),
    _value("mount", mounts.mount),
    _value("name", fields.container_name),
    _value("network", networking.network),
    _switch("no-healthcheck", "healthcheck_disabled"),
    _switch("oom-kill-disable", "oom_kill_disable"),
    _value("oom-score-adj", fields.int_field("oom_score_adj", -1000, 1000)),
    _value("pid", fields.namespace_mode("pid", ("", "host"), container_ok=True)),
    _value("pids-limit", fields.int_field("pids_limit")),
    _value("platform", fields.platform),
    _switch("privileged", "privileged"),
    _value("publish", networking.publish, short="p"),
    _value("pull", fields.pull),
    _switch("read-only", "read_only"),
    _value("restart", fields.restart),
    _switch("rm", "auto_remove"),
    _value("runtime", fields.string_field("runtime")),
    _value("security-opt", host_access.security_opt),
    _value("shm-size", fields.size_field("shm_size")),
    _value("stop-signal", fields.stop_signal),
    _value("stop-timeout", fields.int_field("stop_timeout")),
    _value("sysctl", host_access.sysctl),
    _value("tmpfs", mounts.tmpfs),
    _switch("tty", "tty", short="t"),
    _value("ulimit", host_access.ulimit),
    _value("user", fields.string_field("user"), short="u"),
    _value("userns", fields.namespace_mode("userns", ("", "host"), container_ok=False)),
    _value("uts", fields.namespace_mode("uts", ("", "host"), container_ok=False)),
    _value("volume", mounts.volume, short="v"),
    _value("workdir", fields.workdir, short="w"),
    # accepted, without effect
    _no_effect("quiet", "q", _B, "it only silences pull progress"),
    _no_effect("sig-proxy", None, _B, _ATTACHED_CLI),
    _no_effect("detach-keys", None, _V, _ATTACHED_CLI),
    _no_effect("disable-content-trust", None, _B, "content trust is a docker CLI feature for pulls"),
    # refused
    _refused("attach", "a", _V, "the orchestrator attaches to the container's stdin and stdout itself"),
    _refused(
        "cidfile",
        None,
        _V,
        "it writes the container ID to a file on the host; the orchestrator finds its containers by label",
    ),
    _refused(
        "publish-all",
        "P",
        _B,
        "it publishes every exposed port on a random host port, outside the orchestrator's port range; use -p",
    ),
    _refused("use-api-socket", None, _B, "it would give the server control of the Docker engine"),
    _refused(
        "volumes-from",
        None,
        _V,
        "it copies the mounts of another container, which the orchestrator does not manage; use -v or --mount",
    ),
    _refused("link", None, _V, _ADDRESSES),
    _refused("ip", None, _V, _ADDRESSES),
    _refused("ip6", None, _V, _ADDRESSES),
    _refused("link-local-ip", None, _V, _ADDRESSES),
    _refused("mac-address", None, _V, _ADDRESSES),
    _refused("network-alias", None, _V, _ADDRESSES),
    _refused("blkio-weight", None, _V, _BLKIO),
    _refused("blkio-weight-device", None, _V, _BLKIO),
    _refused("device-read-bps", None, _V, _BLKIO),
    _refused("device-read-iops", None, _V, _BLKIO),
    _refused("device-write-bps", None, _V, _BLKIO),
    _refused("device-write-iops", None, _V, _BLKIO),
    _refused("health-cmd", None, _V, _HEALTH),
    _refused("health-interval", None, _V, _HEALTH),
    _refused("health-retries", None, _V, _HEALTH),
    _refused("health-start-period", None, _V, _HEALTH),
    _refused("health-start-interval", None, _V, _HEALTH),
    _refused("health-timeout", None, _V, _HEALTH),
    _refused("cpu-count", None, _V, _WINDOWS),
    _refused("cpu-percent", None, _V, _WINDOWS),
    _refused("io-maxbandwidth", None, _V, _WINDOWS),
    _refused("io-maxiops", None, _V, _WINDOWS),
    _refused("isolation", None, _V, _WINDOWS),
    _refused("cpu-rt-period", None, _V, _RT),
    _refused("cpu-rt-runtime", None, _V, _RT),
    _refused("cgroup-parent", None, _V, "the orchestrator keeps containers in Docker's default cgroup"),
    _refused("device-cgroup-rule", None, _V, "raw device cgroup rules are not supported; use --device"),
    _refused("kernel-memory", None, _V, "Docker deprecated it and cgroup v2 ignores it"),
    _refused("storage-opt", None, _V, "storage-driver options depend on the host's storage driver"),
    _refused("volume-driver", None, _V, "use --mount type=volume,volume-driver=NAME instead"),
    _refused("annotation", None, _V, "it needs Docker API 1.43; the orchestrator targets 1.41"),
    _refused("help", None, _B, "it prints usage and is not a container setting"),
)

# Hidden aliases the CLI still accepts.
_ALIASES = {"net": "network", "dns-opt": "dns-option", "net-alias": "network-alias"}

BY_NAME: Dict[str, Flag] = {f.name: f for f in FLAGS}
BY_NAME.update({alias: BY_NAME[name] for alias, name in _ALIASES.items()})
BY_SHORT: Dict[str, Flag] = {f.short: f for f in FLAGS if f.short}
