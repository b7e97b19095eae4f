"""Handlers of the flags that mount storage into the container: -v, --mount, --tmpfs."""

from __future__ import annotations

import csv
import os
import re
from typing import Dict

from common.container_spec import MountSpec, VolumeSpec
from common.docker_args.run import Bad, Run
from common.docker_args.values import clean_path, parse_bool, parse_size, unexpanded

_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def volume(run: Run, written: str, value: str) -> None:
    if value == "":
        raise Bad("the volume spec is empty")
    parts = value.split(":")
    if any(p == "" for p in parts):
        raise Bad(f"'{value}': empty section between colons")
    if len(parts) > 3:
        raise Bad(f"'{value}': too many colons (expected [SOURCE:]TARGET[:OPTIONS])")
    if len(parts) == 1:
        target, source, options = parts[0], "", ""
    else:
        source, target = parts[0], parts[1]
        options = parts[2] if len(parts) == 3 else ""
    if not target.startswith("/"):
        raise Bad(f"'{value}': the container path '{target}' must be absolute")
    if clean_path(target) == "/":
        raise Bad(f"'{value}': the container path cannot be '/'")
    read_only = False
    for opt in options.split(",") if options else []:
        if opt == "ro":
            read_only = True
        elif opt == "rw":
            read_only = False
        elif opt in ("z", "Z"):
            raise Bad(
                f"'{value}': SELinux relabelling ('{opt}') is not supported by the "
                "orchestrator; label the host path yourself (chcon -Rt "
                "container_file_t PATH) and drop the option"
            )
        elif opt in ("shared", "rshared", "slave", "rslave", "private", "rprivate"):
            raise Bad(
                f"'{value}': the option '{opt}' is not supported with -v by the "
                "orchestrator; use --mount type=bind,src=SOURCE,dst=TARGET,"
                f"bind-propagation={opt}"
            )
        elif opt == "nocopy":
            raise Bad(
                f"'{value}': the option 'nocopy' is not supported with -v by the "
                "orchestrator; use --mount type=volume,src=NAME,dst=TARGET,"
                "volume-nocopy"
            )
        else:
            raise Bad(f"'{value}': unknown volume option '{opt}' (use ro or rw)")
    if not source:
        run.add("volumes", VolumeSpec(value, "anonymous", "", target, read_only))
        return
    why = unexpanded(source)
    if why:
        raise Bad(f"'{value}': {why}")
    if source.startswith("/"):
        if not os.path.exists(source):
            run.warn(
                written,
                f"'{value}': the host path {source} does not exist; Docker "
                "will create it as an empty directory owned by root",
            )
        run.add("volumes", VolumeSpec(value, "bind", source, target, read_only))
        return
    if source in (".", "..") or source.startswith("."):
        raise Bad(
            f"'{value}': the host path '{source}' is relative; the docker CLI "
            "resolves it against its own working directory, which an MCP client "
            "does not define: write an absolute path"
        )
    if not _VOLUME_NAME.fullmatch(source):
        raise Bad(
            f"'{value}': '{source}' is not a valid volume name (letters, digits, "
            "'_', '.', '-'); to mount a host directory write an absolute path"
        )
    run.add("volumes", VolumeSpec(value, "volume", source, target, read_only))


_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


def mount(run: Run, written: str, value: str) -> None:
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise Bad(f"'{value}': {exc}") from None
    fields = rows[0] if rows else []
    m: Dict[str, object] = {"type": "volume"}
    labels: Dict[str, str] = {}
    options: Dict[str, str] = {}

    def boolean(key: str, text: str) -> bool:
        try:
            return parse_bool(text)
        except Bad:
            raise Bad(f"'{value}': invalid value for {key}: '{text}'") from None

    def pair(key: str, text: str, into: Dict[str, str]) -> None:
        k, _, v = text.partition("=")
        if not k:
            raise Bad(f"'{value}': {key} needs NAME=VALUE")
        into[k] = v

    for fld in fields:
        key, eq, val = fld.partition("=")
        if not eq:
            if key in ("readonly", "ro"):
                m["read_only"] = True
            elif key == "volume-nocopy":
                m["volume_nocopy"] = True
            elif key == "bind-nonrecursive":
                m["bind_nonrecursive"] = True
            else:
                raise Bad(f"'{value}': invalid field '{fld}': must be a key=value pair")
            continue
        if key == "type":
            m["type"] = val.lower()
        elif key in ("source", "src"):
            m["source"] = val
        elif key in ("target", "dst", "destination"):
            m["target"] = val
        elif key in ("readonly", "ro"):
            m["read_only"] = boolean(key, val)
        elif key == "consistency":
            m["consistency"] = val.lower()
        elif key == "bind-propagation":
            if val.lower() not in _PROPAGATIONS:
                raise Bad(f"'{value}': invalid bind-propagation '{val}' (one of {', '.join(sorted(_PROPAGATIONS))})")
            m["bind_propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            m["bind_nonrecursive"] = boolean(key, val)
        elif key == "volume-nocopy":
            m["volume_nocopy"] = boolean(key, val)
        elif key == "volume-label":
            pair(key, val, labels)
        elif key == "volume-driver":
            if not val:
                raise Bad(f"'{value}': volume-driver needs a driver name")
            m["volume_driver"] = val
        elif key == "volume-opt":
            pair(key, val, options)
        elif key == "tmpfs-size":
            try:
                m["tmpfs_size"] = parse_size(val)
            except Bad:
                raise Bad(f"'{value}': invalid value for tmpfs-size: '{val}'") from None
        elif key == "tmpfs-mode":
            if not re.fullmatch(r"[0-7]+", val) or int(val, 8) > 0xFFFFFFFF:
                raise Bad(f"'{value}': invalid value for tmpfs-mode: '{val}' (octal, for example 1770)")
            m["tmpfs_mode"] = int(val, 8)
        else:
            raise Bad(f"'{value}': unexpected key '{key}' in '{fld}'")
    if labels:
        m["volume_labels"] = tuple(labels.items())
    if options:
        m["volume_options"] = tuple(options.items())
    kind = m["type"]
    if kind not in ("bind", "volume", "tmpfs"):
        raise Bad(f"'{value}': mount type '{kind}' is not supported (bind, volume or tmpfs)")
    target = str(m.get("target", ""))
    if not target:
        raise Bad(f"'{value}': target is required (target=/path/in/container)")
    if not target.startswith("/"):
        raise Bad(f"'{value}': the target '{target}' must be an absolute path")
    spec = MountSpec(**m)  # type: ignore[arg-type]
    for has, prefix in (
        (spec.has_volume_options(), "volume"),
        (spec.has_bind_options(), "bind"),
        (spec.has_tmpfs_options(), "tmpfs"),
    ):
        if has and kind != prefix:
            raise Bad(f"'{value}': cannot mix '{prefix}-*' options with mount type '{kind}'")
    source = spec.source
    if source:
        why = unexpanded(source)
        if why:
            raise Bad(f"'{value}': {why}")
    if kind == "bind":
        if not source:
            raise Bad(f"'{value}': a bind mount needs source=/absolute/host/path")
        if not source.startswith("/"):
            raise Bad(
                f"'{value}': the source '{source}' must be an absolute host path; the "
                "docker CLI resolves a relative one against its own working "
                "directory, which an MCP client does not define"
            )
        if not os.path.exists(source):
            run.warn(
                written,
                f"'{value}': the host path {source} does not exist; Docker "
                "refuses to create the container until it does",
            )
    elif kind == "volume" and source and spec.volume_driver is None:
        if not _VOLUME_NAME.fullmatch(source):
            raise Bad(
                f"'{value}': '{source}' is not a valid volume name (letters, digits, "
                "'_', '.', '-'); for a host directory use type=bind with an "
                "absolute source"
            )
    elif kind == "tmpfs" and source:
        raise Bad(f"'{value}': a tmpfs mount takes no source")
    run.add("mounts", spec)


def tmpfs(run: Run, written: str, value: str) -> None:
    path, _, options = value.partition(":")
    if not path.startswith("/"):
        raise Bad(f"'{value}': the container path '{path}' must be absolute")
    run.put("tmpfs", path, options)
