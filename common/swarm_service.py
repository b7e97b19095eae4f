"""A server's parsed `docker run` spec as a Docker Swarm service (`[cluster] engine = swarm`).

`service_issues` names every flag of the spec that a service cannot express (one error
per flag: the server is not run rather than run differently from what its args say);
`service_definition` gives the Engine API's service definition for the rest, the only
place besides `container_spec.create_kwargs` where env values are revealed.

What the orchestrator adds to the user's spec: stdin open and no TTY (the bridge speaks
to the server's stdio), our labels on the service and on its containers, replicas,
placement spread over the zone label with at most `max_per_node` replicas on a node,
Swarm's restart policy with a delay, and rolling updates that start the new task before
stopping the old one (when a node has room for it) and roll back by themselves when the
new one fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from common import container_labels as ours
from common.container_spec import ArgIssue, ContainerSpec, MountSpec, VolumeSpec, mount_api
from common.docker_args.run import Bad
from common.docker_args.values import parse_size

_NS = 1_000_000_000

# Fields of a ContainerSpec that a Swarm service (Engine API 1.41) has no place for:
# (attribute, the flag as written, why).
_UNSUPPORTED: tuple[tuple[str, str, str], ...] = (
    ("privileged", "--privileged", "a Swarm service cannot run privileged"),
    ("devices", "--device", "a Swarm service cannot map host devices"),
    ("gpus", "--gpus", "a Swarm service cannot request GPUs this way (use node generic resources)"),
    ("ipc", "--ipc", "a Swarm service cannot choose its IPC namespace"),
    ("pid", "--pid", "a Swarm service cannot share a PID namespace"),
    ("uts", "--uts", "a Swarm service cannot share the host's UTS namespace"),
    ("userns", "--userns", "a Swarm service cannot choose its user namespace"),
    ("cgroupns", "--cgroupns", "a Swarm service cannot choose its cgroup namespace"),
    ("runtime", "--runtime", "a Swarm service cannot choose a runtime"),
    ("memory_swap", "--memory-swap", "a Swarm service has no swap limit"),
    ("memory_swappiness", "--memory-swappiness", "a Swarm service has no swappiness"),
    ("oom_kill_disable", "--oom-kill-disable", "a Swarm service cannot disable the OOM killer"),
    ("oom_score_adj", "--oom-score-adj", "a Swarm service has no OOM score adjustment"),
    ("cpu_shares", "--cpu-shares", "a Swarm service has no CPU shares: use --cpus"),
    ("cpu_period", "--cpu-period", "a Swarm service has no CPU period: use --cpus"),
    ("cpu_quota", "--cpu-quota", "a Swarm service has no CPU quota: use --cpus"),
    ("cpuset_cpus", "--cpuset-cpus", "a Swarm service cannot pin CPUs"),
    ("cpuset_mems", "--cpuset-mems", "a Swarm service cannot pin memory nodes"),
    ("shm_size", "--shm-size", "a Swarm service cannot size /dev/shm (mount a tmpfs there instead)"),
    ("domainname", "--domainname", "a Swarm service has no domain name"),
    ("platform", "--platform", "a Swarm service's platform is the node's"),
    ("security_opt", "--security-opt", "a Swarm service (API 1.41) takes no security options"),
    ("ports", "-p", "a Swarm service of the orchestrator publishes no port: its bridge serves it"),
)


@dataclass(frozen=True)
class ServicePolicy:
    """What the orchestrator decides for every service (from `[cluster]`)."""

    replicas: int = 2
    zone_label: str = "zone"  # node label the replicas are spread over ("": no spread)
    max_per_node: int = 1  # 0: no limit
    restart_delay_seconds: float = 5.0
    update_delay_seconds: float = 5.0
    update_monitor_seconds: float = 10.0
    # A replica being stopped is drained first (see DRAIN_SIGNAL): this long at most,
    # then its own stop signal and timeout apply ([aws] deregistration_delay_seconds).
    drain_seconds: float = 30.0


# The stop signal of every task: one no process acts on (its default action is to ignore
# it). Swarm sends it when it stops a replica (an update, a scale-in, a drain); the
# node's container-agent takes it as "drain": its node leaves the target group, the
# requests in flight finish, then the agent stops the container with its own stop
# signal. If the agent does not, Swarm kills the task after the grace period.
DRAIN_SIGNAL = "SIGWINCH"
DEFAULT_STOP_TIMEOUT = 10  # seconds, as `docker stop`


def service_name(server_id: str) -> str:
    return f"mcp-{server_id}"


def service_issues(spec: ContainerSpec) -> tuple[ArgIssue, ...]:
    """One error per flag a Swarm service cannot express, and a note per flag it ignores."""
    issues: list[ArgIssue] = []
    for attr, flag, why in _UNSUPPORTED:
        if getattr(spec, attr):
            issues.append(ArgIssue("error", flag, f"{flag} cannot be used with [cluster] engine = swarm: {why}"))
    if spec.entrypoint == ("",):
        issues.append(
            ArgIssue(
                "error",
                "--entrypoint",
                '--entrypoint "" cannot be used with [cluster] engine = swarm: a service can replace the '
                "entrypoint, not clear it; name the program to run instead",
            )
        )
    for target, options in spec.tmpfs:
        extra = {o.split("=", 1)[0] for o in options.split(",") if o} - {"size", "mode"}
        if extra:
            issues.append(
                ArgIssue(
                    "error",
                    "--tmpfs",
                    f"--tmpfs {target}: option(s) {', '.join(sorted(extra))} cannot be used with [cluster] "
                    "engine = swarm (size and mode can)",
                )
            )
        else:
            try:
                _tmpfs_mount(target, options)
            except (Bad, ValueError) as exc:
                issues.append(
                    ArgIssue(
                        "error", "--tmpfs", f"--tmpfs {target} cannot be used with [cluster] engine = swarm: {exc}"
                    )
                )
    if spec.network and spec.network not in ("host", "none", "bridge", "default"):
        issues.append(
            ArgIssue(
                "warning",
                "--network",
                f"--network {spec.network}: with [cluster] engine = swarm this must be an overlay network "
                "(or one of scope swarm) that exists on every node",
            )
        )
    if spec.exposed:
        issues.append(ArgIssue("info", "--expose", "--expose has no effect on a Swarm service"))
    return tuple(issues)


def service_definition(
    server_id: str,
    spec: ContainerSpec,
    policy: ServicePolicy,
    labels: Mapping[str, str],
    replicas: Optional[int] = None,
    nodes: Optional[int] = None,
) -> dict[str, Any]:
    """Keyword arguments for the Docker SDK's low-level `APIClient.create_service` (and,
    with `version=`, `update_service`). `labels` are ours: on the service and on each of
    its containers, over the user's own container labels. `nodes`: how many nodes can
    take a task now (see `update_order`)."""
    replicas = policy.replicas if replicas is None else replicas
    container: dict[str, Any] = {"Image": spec.image, "OpenStdin": True, "TTY": False}
    if spec.entrypoint is not None:
        container["Command"] = list(spec.entrypoint)
    if spec.command:
        container["Args"] = list(spec.command)
    if spec.env:
        container["Env"] = [f"{k}={v.reveal()}" for k, v in spec.env]
    container["Labels"] = {**dict(spec.labels), **labels}
    for attr, key in (("hostname", "Hostname"), ("user", "User"), ("working_dir", "Dir")):
        value = getattr(spec, attr)
        if value:
            container[key] = value
    mounts = [_volume_mount(v) for v in spec.volumes] + [mount_api(m) for m in spec.mounts]
    mounts += [_tmpfs_mount(target, options) for target, options in spec.tmpfs]
    if mounts:
        container["Mounts"] = mounts
    if spec.read_only:
        container["ReadOnly"] = True
    if spec.init is not None:
        container["Init"] = spec.init
    # The server's own stop signal and timeout are applied by the agent after the drain.
    stop_timeout = spec.stop_timeout if spec.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
    container["Labels"][ours.STOP_SIGNAL] = spec.stop_signal or "SIGTERM"
    container["Labels"][ours.STOP_TIMEOUT] = str(stop_timeout)
    container["StopSignal"] = DRAIN_SIGNAL
    container["StopGracePeriod"] = int((policy.drain_seconds + stop_timeout) * _NS)
    if spec.healthcheck_disabled:
        container["Healthcheck"] = {"Test": ["NONE"]}
    if spec.extra_hosts:
        # `docker run --add-host name:ip`; a service's Hosts are /etc/hosts lines, "ip name".
        container["Hosts"] = [f"{h.rsplit(':', 1)[1]} {h.rsplit(':', 1)[0]}" for h in spec.extra_hosts if ":" in h]
    if spec.dns or spec.dns_search or spec.dns_options:
        container["DNSConfig"] = {
            "Nameservers": list(spec.dns),
            "Search": list(spec.dns_search),
            "Options": list(spec.dns_options),
        }
    if spec.group_add:
        container["Groups"] = list(spec.group_add)
    if spec.cap_add:
        container["CapabilityAdd"] = list(spec.cap_add)
    if spec.cap_drop:
        container["CapabilityDrop"] = list(spec.cap_drop)
    if spec.sysctls:
        container["Sysctls"] = dict(spec.sysctls)
    if spec.ulimits:
        container["Ulimits"] = [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits]

    limits: dict[str, Any] = {}
    if spec.nano_cpus is not None:
        limits["NanoCPUs"] = spec.nano_cpus
    if spec.memory is not None:
        limits["MemoryBytes"] = spec.memory
    if spec.pids_limit is not None:
        limits["Pids"] = spec.pids_limit
    resources: dict[str, Any] = {}
    if limits:
        resources["Limits"] = limits
    if spec.memory_reservation is not None:
        resources["Reservations"] = {"MemoryBytes": spec.memory_reservation}

    placement: dict[str, Any] = {}
    if policy.zone_label:
        placement["Preferences"] = [{"Spread": {"SpreadDescriptor": f"node.labels.{policy.zone_label}"}}]
    if policy.max_per_node:
        placement["MaxReplicas"] = policy.max_per_node

    task: dict[str, Any] = {
        "ContainerSpec": container,
        "RestartPolicy": {"Condition": "any", "Delay": int(policy.restart_delay_seconds * _NS), "MaxAttempts": 0},
        "Placement": placement,
    }
    if resources:
        task["Resources"] = resources
    if spec.network and spec.network not in ("bridge", "default"):
        task["Networks"] = [{"Target": spec.network}]
    if spec.log_driver:
        task["LogDriver"] = {"Name": spec.log_driver, "Options": dict(spec.log_options)}

    return {
        "task_template": task,
        "name": service_name(server_id),
        "labels": dict(labels),
        "mode": {"Replicated": {"Replicas": replicas}},
        "update_config": {
            "Parallelism": 1,
            "Delay": int(policy.update_delay_seconds * _NS),
            "FailureAction": "rollback",
            "Monitor": int(policy.update_monitor_seconds * _NS),
            "Order": update_order(policy, replicas, nodes),
        },
        "rollback_config": {"Parallelism": 1, "FailureAction": "pause", "Order": update_order(policy, replicas, nodes)},
    }


def update_order(policy: ServicePolicy, replicas: int, nodes: Optional[int]) -> str:
    """start-first (the new task serves before the old one stops) when there is room
    for one task more than the replicas; stop-first when the per-node limit leaves none
    (3 replicas, 3 nodes, one per node: a new task would wait for a free node forever)."""
    if not policy.max_per_node or nodes is None or replicas < nodes * policy.max_per_node:
        return "start-first"
    return "stop-first"


def _volume_mount(volume: VolumeSpec) -> dict[str, Any]:
    """A `-v` entry as the Mount a service takes (the parser allows only ro and rw after it)."""
    kind = "bind" if volume.kind == "bind" else "volume"
    return mount_api(MountSpec(type=kind, target=volume.target, source=volume.source, read_only=volume.read_only))


def _tmpfs_mount(target: str, options: str) -> dict[str, Any]:
    """A `--tmpfs` entry as a tmpfs Mount; raises Bad or ValueError for a bad size or mode."""
    size: Optional[int] = None
    mode: Optional[int] = None
    for option in (o for o in options.split(",") if o):
        key, _, value = option.partition("=")
        if key == "size":
            size = parse_size(value)
        elif key == "mode":
            mode = int(value, 8)
    return mount_api(MountSpec(type="tmpfs", target=target, tmpfs_size=size, tmpfs_mode=mode))


def service_policy(cluster: Any, drain_seconds: float = 30.0) -> ServicePolicy:
    """The policy `[cluster]` settings (common.settings.ClusterSettings) decide;
    `drain_seconds`: [aws] deregistration_delay_seconds."""
    return ServicePolicy(
        drain_seconds=drain_seconds,
        replicas=cluster.default_replicas,
        zone_label=cluster.zone_label,
        max_per_node=cluster.max_replicas_per_node,
        restart_delay_seconds=cluster.restart_delay_seconds,
        update_delay_seconds=cluster.update_delay_seconds,
        update_monitor_seconds=cluster.update_monitor_seconds,
    )
