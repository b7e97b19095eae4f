"""Checks across flags, made once every flag is read: what Docker would refuse only in
combination (limits, duplicate mount points, --rm with --restart, ...), and env-block
keys that no flag passes to the container."""

from __future__ import annotations

from typing import Dict

from common.container_spec import RestartPolicy
from common.docker_args.run import Run
from common.docker_args.values import clean_path

_MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less


def check_combinations(run: Run, f: Dict[str, object]) -> None:
    memory = f.get("memory")
    swap = f.get("memory_swap")
    if isinstance(memory, int) and 0 < memory < _MIN_MEMORY:
        run.error("--memory", "the memory limit must be at least 6MB (Docker refuses less)")
    if isinstance(swap, int) and swap not in (0, -1):
        if not memory:
            run.error("--memory-swap", "--memory-swap needs a --memory limit too")
        elif isinstance(memory, int) and swap < memory:
            run.error("--memory-swap", "--memory-swap is memory plus swap: it cannot be below --memory")
    reservation = f.get("memory_reservation")
    if isinstance(reservation, int) and isinstance(memory, int) and memory and reservation > memory:
        run.error("--memory-reservation", "--memory-reservation must be below --memory")
    if f.get("nano_cpus") and (f.get("cpu_period") or f.get("cpu_quota")):
        run.error("--cpus", "--cpus conflicts with --cpu-period/--cpu-quota: use one or the other")
    restart = f.get("restart")
    if f.get("auto_remove") and isinstance(restart, RestartPolicy) and restart.name != "no":
        run.error("--restart", "conflicting options: --restart and --rm (docker refuses both)")
    log_driver = f.get("log_driver")
    if log_driver == "none" and run.maps.get("log_options"):
        run.error("--log-opt", "--log-opt does not apply to --log-driver none")
    if len(run.networks) > 1:
        run.error(
            "--network", "only one --network is supported (Docker API 1.41 connects a new container to one network)"
        )


def check_mount_targets(run: Run, f: Dict[str, object]) -> None:
    seen: Dict[str, str] = {}
    targets = [(v.target, "-v " + v.spec) for v in f.get("volumes", ())]  # type: ignore
    targets += [(m.target, "--mount target=" + m.target) for m in f.get("mounts", ())]  # type: ignore
    for target, shown in targets:
        key = clean_path(target)
        if key in seen:
            run.error(
                shown.split(" ")[0],
                f"two mounts at {key} ({seen[key]} and {shown}); Docker refuses duplicate mount points",
            )
        seen[key] = shown


def warn_unused_env_block(run: Run) -> None:
    unused = [k for k in run.env_block if k not in run.env_block_used]
    if not unused:
        return
    shadowed = [k for k in unused if k in run.literal_env_names]
    missing = [k for k in unused if k not in run.literal_env_names]
    if missing:
        names = ", ".join(missing)
        noun = "key" if len(missing) == 1 else "keys"
        run.warn(
            None,
            f"env {noun} {names} not passed to the container: the docker CLI only "
            'forwards env-block keys named by a bare -e KEY; add "-e", "KEY" '
            "to args for each key the server needs",
        )
    for k in shadowed:
        run.warn("-e", f"env key {k} is set by -e {k}=… in args, so its env-block value is not used")
