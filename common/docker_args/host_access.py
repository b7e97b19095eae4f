"""Handlers of the flags that give the container access to the host: capabilities,
security options, groups, devices, GPUs, ulimits and sysctls."""

from __future__ import annotations

import csv
import json
import re
from typing import Optional

from common.container_spec import DeviceMapping, GpuRequest, Ulimit
from common.docker_args.run import Bad, Run
from common.docker_args.values import clean_path, parse_int, unexpanded


def _capability(value: str) -> str:
    cap = value.upper()
    if cap != "ALL" and not cap.startswith("CAP_"):
        cap = "CAP_" + cap
    if not re.fullmatch(r"ALL|CAP_[A-Z0-9_]+", cap):
        raise Bad(f"'{value}' is not a capability name (for example NET_ADMIN)")
    return cap


def cap_add(run: Run, written: str, value: str) -> None:
    run.add("cap_add", _capability(value))


def cap_drop(run: Run, written: str, value: str) -> None:
    run.add("cap_drop", _capability(value))


def _compact_json(text: str) -> str:
    """Go's json.Compact: whitespace outside strings removed, nothing else changed."""
    out = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in " \t\r\n":
            out.append(ch)
    return "".join(out)


def security_opt(run: Run, written: str, value: str) -> None:
    key, eq, val = value.partition("=")
    if not eq and key != "no-new-privileges":
        key, eq, val = value.partition(":")
    if (not eq or val == "") and key != "no-new-privileges":
        raise Bad(f"invalid --security-opt '{value}' (expected KEY=VALUE or no-new-privileges)")
    if value == "systempaths=unconfined":
        raise Bad(
            "systempaths=unconfined is not supported by the orchestrator: it "
            "unmasks the host's /proc and /sys paths in the container"
        )
    if key == "seccomp" and val not in ("unconfined", "builtin"):
        why = unexpanded(val)
        if why:
            raise Bad(f"seccomp profile {val}: {why}")
        path = run.host_file(val)
        try:
            text = path.read_text(encoding="utf-8")
            json.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise Bad(f"cannot read the seccomp profile {val} ({path}): {reason}") from None
        except ValueError as exc:
            raise Bad(f"the seccomp profile {val} is not valid JSON: {exc}") from None
        except RecursionError:
            raise Bad(f"the seccomp profile {val} is JSON nested too deeply") from None
        value = "seccomp=" + _compact_json(text)
    run.add("security_opt", value)


def group_add(run: Run, written: str, value: str) -> None:
    if not value:
        raise Bad("the group is empty")
    run.add("group_add", value)


def _device_mode(text: str) -> bool:
    return bool(text) and len(set(text)) == len(text) and set(text) <= set("rwm")


def device(run: Run, written: str, value: str) -> None:
    parts = value.split(":")
    if len(parts) > 3 or not parts[0]:
        raise Bad(f"'{value}': expected HOST_PATH[:CONTAINER_PATH][:PERMISSIONS]")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 2:
        if _device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = clean_path(parts[1])
    elif len(parts) == 3:
        dst, perms = parts[1], parts[2]
        if not _device_mode(perms):
            raise Bad(f"'{value}': bad permissions '{perms}' (a combination of r, w, m)")
    else:
        src = clean_path(src)
    why = unexpanded(src)
    if why:
        raise Bad(f"'{value}': {why}")
    if "*" in src:
        raise Bad(f"'{value}': device globs are not supported; name each device")
    if not src.startswith("/"):
        raise Bad(f"'{value}': the host device path must be absolute")
    dst = dst or src
    if not dst.startswith("/"):
        raise Bad(f"'{value}': {dst} is not an absolute path")
    run.add("devices", DeviceMapping(src, dst, perms))


def gpus(run: Run, written: str, value: str) -> None:
    try:
        fields = next(csv.reader([value], strict=True), [])
    except csv.Error as exc:
        raise Bad(f"'{value}': {exc}") from None
    seen: set = set()
    count: Optional[int] = None
    driver, device_ids, caps, options = "", None, None, {}

    def parse_count(text: str) -> int:
        if text == "all":
            return -1
        try:
            return parse_int(text)
        except Bad:
            raise Bad(f"'{value}': count must be an integer or all") from None

    for fld in fields:
        key, eq, val = fld.partition("=")
        if key in seen:
            raise Bad(f"'{value}': gpu request key '{key}' can be specified only once")
        seen.add(key)
        if not eq:
            seen.add("count")
            count = parse_count(key)
        elif key == "driver":
            driver = val
        elif key == "count":
            count = parse_count(val)
        elif key == "device":
            device_ids = tuple(val.split(","))
        elif key == "capabilities":
            caps = ((*val.split(","), "gpu"),)
        elif key == "options":
            for opt in next(csv.reader([val]), []):
                k, _, v = opt.partition("=")
                options[k] = v
        else:
            raise Bad(f"'{value}': unexpected key '{key}'")
    if count is None:
        count = 0 if device_ids is not None else 1
    run.add("gpus", GpuRequest(count, driver, device_ids, caps or (("gpu",),), tuple(options.items())))


_ULIMIT_NAMES = {
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
}


def ulimit(run: Run, written: str, value: str) -> None:
    name, eq, limits = value.partition("=")
    if not eq:
        raise Bad(f"'{value}': expected NAME=SOFT[:HARD]")
    if name not in _ULIMIT_NAMES:
        raise Bad(f"'{value}': unknown ulimit '{name}' (one of {', '.join(sorted(_ULIMIT_NAMES))})")
    parts = limits.split(":")
    if len(parts) > 2:
        raise Bad(f"'{value}': expected NAME=SOFT[:HARD]")
    soft = parse_int(parts[0], "an integer limit")
    hard = parse_int(parts[1], "an integer limit") if len(parts) == 2 else soft
    if hard != -1 and soft > hard:
        raise Bad(f"'{value}': the soft limit {soft} is above the hard limit {hard}")
    run.put("ulimits", name, Ulimit(name, soft, hard))


_SYSCTLS = {
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
}


def sysctl(run: Run, written: str, value: str) -> None:
    name, eq, val = value.partition("=")
    if not eq:
        raise Bad(f"'{value}': expected NAME=VALUE")
    if name not in _SYSCTLS and not name.startswith(("net.", "fs.mqueue.")):
        raise Bad(
            f"sysctl '{name}' is not allowed in a container (net.*, fs.mqueue.* and some kernel.* IPC settings are)"
        )
    run.put("sysctls", name, val)
