"""The `docker run` arguments of an MCP server config, parsed as the docker CLI parses them.

`parse_docker_run` gives the faithful meaning of the args (what `docker create` with
the same args would create) as a `ContainerSpec`, plus every problem found as an
`ArgIssue`. `orchestrated` then applies the orchestrator's own policy (no TTY, stdin
always open, the orchestrator names and removes containers itself, ...).

Flag syntax follows spf13/pflag as the CLI configures it: `--flag value`,
`--flag=value`, `-e VALUE`, `-eVALUE`, `-e=VALUE`, combined booleans (`-it`), a value
flag last in a group (`-ie FOO`), `--rm=false`, `--` ends the flags, and the first
non-flag argument is the image: everything after it is the container's command.

Env values are secrets: they are wrapped in `Secret` and no issue message ever shows
one. Relative paths of files the args name (`--env-file`, `--label-file`, a seccomp
profile) are resolved against `base_dir`, the config file's directory.
"""

from __future__ import annotations

import csv
import dataclasses
import ipaddress
import json
import os
import posixpath
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from common.container_spec import (
    ArgIssue,
    ContainerSpec,
    DeviceMapping,
    GpuRequest,
    MountSpec,
    PortBinding,
    RestartPolicy,
    Ulimit,
    VolumeSpec,
    create_kwargs,
    spec_hash,
)
from common.secrets import Secret

ERROR, WARNING, INFO = "error", "warning", "info"

# Labels under this prefix belong to the orchestrator (ownership, port, spec hash).
RESERVED_LABEL_PREFIX = "mcp-orchestrator."


@dataclass(frozen=True)
class ParsedRun:
    spec: Optional[ContainerSpec]  # None when there is any error
    issues: Tuple[ArgIssue, ...]

    @property
    def errors(self) -> Tuple[ArgIssue, ...]:
        return tuple(i for i in self.issues if i.severity == ERROR)


# --- the flag table ------------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    name: str  # canonical long name
    short: Optional[str]
    takes_value: bool
    unsupported: Optional[str] = None  # why the orchestrator refuses it
    no_effect: Optional[str] = None  # accepted, but changes nothing in the container


def _flags() -> Tuple[Dict[str, _Flag], Dict[str, _Flag]]:
    v, b = True, False
    supported = [
        ("add-host", None, v),
        ("cap-add", None, v),
        ("cap-drop", None, v),
        ("cgroupns", None, v),
        ("cpu-period", None, v),
        ("cpu-quota", None, v),
        ("cpu-shares", "c", v),
        ("cpus", None, v),
        ("cpuset-cpus", None, v),
        ("cpuset-mems", None, v),
        ("detach", "d", b),
        ("device", None, v),
        ("dns", None, v),
        ("dns-option", None, v),
        ("dns-search", None, v),
        ("domainname", None, v),
        ("entrypoint", None, v),
        ("env", "e", v),
        ("env-file", None, v),
        ("expose", None, v),
        ("gpus", None, v),
        ("group-add", None, v),
        ("hostname", "h", v),
        ("init", None, b),
        ("interactive", "i", b),
        ("ipc", None, v),
        ("label", "l", v),
        ("label-file", None, v),
        ("log-driver", None, v),
        ("log-opt", None, v),
        ("memory", "m", v),
        ("memory-reservation", None, v),
        ("memory-swap", None, v),
        ("memory-swappiness", None, v),
        ("mount", None, v),
        ("name", None, v),
        ("network", None, v),
        ("no-healthcheck", None, b),
        ("oom-kill-disable", None, b),
        ("oom-score-adj", None, v),
        ("pid", None, v),
        ("pids-limit", None, v),
        ("platform", None, v),
        ("privileged", None, b),
        ("publish", "p", v),
        ("pull", None, v),
        ("read-only", None, b),
        ("restart", None, v),
        ("rm", None, b),
        ("runtime", None, v),
        ("security-opt", None, v),
        ("shm-size", None, v),
        ("stop-signal", None, v),
        ("stop-timeout", None, v),
        ("sysctl", None, v),
        ("tmpfs", None, v),
        ("tty", "t", b),
        ("ulimit", None, v),
        ("user", "u", v),
        ("userns", None, v),
        ("uts", None, v),
        ("volume", "v", v),
        ("workdir", "w", v),
    ]
    no_effect = [
        ("quiet", "q", b, "it only silences pull progress"),
        (
            "sig-proxy",
            None,
            b,
            "it only affects an attached docker CLI; the orchestrator attaches to the container itself",
        ),
        (
            "detach-keys",
            None,
            v,
            "it only affects an attached docker CLI; the orchestrator attaches to the container itself",
        ),
        ("disable-content-trust", None, b, "content trust is a docker CLI feature for pulls"),
    ]
    addresses = (
        "static addresses, aliases and links need network endpoint settings that the orchestrator does not manage"
    )
    blkio = "block-I/O limits are not supported by the orchestrator"
    health = (
        "the orchestrator checks a server's health through its MCP bridge; put a "
        "HEALTHCHECK in the image if Docker should run one"
    )
    windows = "it applies to Windows containers only"
    unsupported = [
        ("attach", "a", v, "the orchestrator attaches to the container's stdin and stdout itself"),
        (
            "cidfile",
            None,
            v,
            "it writes the container ID to a file on the host; the orchestrator finds its containers by label",
        ),
        (
            "publish-all",
            "P",
            b,
            "it publishes every exposed port on a random host port, outside the orchestrator's port range; use -p",
        ),
        ("use-api-socket", None, b, "it would give the server control of the Docker engine"),
        (
            "volumes-from",
            None,
            v,
            "it copies the mounts of another container, which the orchestrator does not manage; use -v or --mount",
        ),
        ("link", None, v, addresses),
        ("ip", None, v, addresses),
        ("ip6", None, v, addresses),
        ("link-local-ip", None, v, addresses),
        ("mac-address", None, v, addresses),
        ("network-alias", None, v, addresses),
        ("blkio-weight", None, v, blkio),
        ("blkio-weight-device", None, v, blkio),
        ("device-read-bps", None, v, blkio),
        ("device-read-iops", None, v, blkio),
        ("device-write-bps", None, v, blkio),
        ("device-write-iops", None, v, blkio),
        ("health-cmd", None, v, health),
        ("health-interval", None, v, health),
        ("health-retries", None, v, health),
        ("health-start-period", None, v, health),
        ("health-start-interval", None, v, health),
        ("health-timeout", None, v, health),
        ("cpu-count", None, v, windows),
        ("cpu-percent", None, v, windows),
        ("io-maxbandwidth", None, v, windows),
        ("io-maxiops", None, v, windows),
        ("isolation", None, v, windows),
        ("cpu-rt-period", None, v, "real-time CPU scheduling is not supported by the orchestrator"),
        ("cpu-rt-runtime", None, v, "real-time CPU scheduling is not supported by the orchestrator"),
        ("cgroup-parent", None, v, "the orchestrator keeps containers in Docker's default cgroup"),
        ("device-cgroup-rule", None, v, "raw device cgroup rules are not supported; use --device"),
        ("kernel-memory", None, v, "Docker deprecated it and cgroup v2 ignores it"),
        ("storage-opt", None, v, "storage-driver options depend on the host's storage driver"),
        ("volume-driver", None, v, "use --mount type=volume,volume-driver=NAME instead"),
        ("annotation", None, v, "it needs Docker API 1.43; the orchestrator targets 1.41"),
        ("help", None, b, "it prints usage and is not a container setting"),
    ]
    by_name: Dict[str, _Flag] = {}
    for name, short, takes in supported:
        by_name[name] = _Flag(name, short, takes)
    for name, short, takes, why in no_effect:
        by_name[name] = _Flag(name, short, takes, no_effect=why)
    for name, short, takes, why in unsupported:
        by_name[name] = _Flag(name, short, takes, unsupported=why)
    # hidden aliases the CLI still accepts
    by_name["net"] = by_name["network"]
    by_name["dns-opt"] = by_name["dns-option"]
    by_name["net-alias"] = by_name["network-alias"]
    by_short = {f.short: f for f in by_name.values() if f.short}
    return by_name, by_short


_BY_NAME, _BY_SHORT = _flags()
_ENV_FLAGS = {"env"}


@dataclass(frozen=True)
class _Occurrence:
    written: str  # the flag as the user wrote it: "-e", "--env", "-i" (from "-it")
    flag: _Flag
    value: str


# --- small value parsers (return a value, or raise _Bad with a message) -----------


class _Bad(Exception):
    """An invalid flag value; the message is shown to the user (never a secret)."""


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Bad(f"'{text}' is not a boolean (true or false)")


_INT64 = (-(1 << 63), (1 << 63) - 1)


def _parse_int(text: str, what: str = "an integer") -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", text) or not _INT64[0] <= int(text) <= _INT64[1]:
        raise _Bad(f"'{text}' is not {what}")
    return int(text)


_SIZE = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+) ?(?P<unit>[kKmMgGtTpP](?:[iI]?[bB])?|[bB])?")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _parse_size(text: str) -> int:
    """Bytes, as docker's RAMInBytes: 512, 512b, 64k, 64m, 1.5g (binary units)."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise _Bad(f"'{text}' is not a size (for example 512m or 2g)")
    size = float(m.group("num")) * _UNITS.get((m.group("unit") or "b")[0].lower(), 1)
    if size > _INT64[1]:
        raise _Bad(f"'{text}' is too large")
    return int(size)


_CPUS = re.compile(
    r"[0-9]{1,12}(\.[0-9]{0,12})?([eE][-+]?[0-9]{1,2})?|\.[0-9]{1,12}"
    r"|[0-9]{1,12}/[0-9]{1,12}"
)


def _parse_nano_cpus(text: str) -> int:
    try:
        if not _CPUS.fullmatch(text):  # also keeps Fraction away from huge exponents
            raise ValueError(text)
        cpus = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise _Bad(f"'{text}' is not a number of CPUs (for example 0.5 or 2)") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise _Bad(f"'{text}' is too precise (at most 9 decimals)")
    if nano <= 0:
        raise _Bad(f"'{text}' must be more than 0")
    return int(nano)


_HOST_VAR = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_INPUT_PLACEHOLDER = "${input:"


def _unexpanded(path: str) -> Optional[str]:
    """Why a host path still holds shell syntax, or None."""
    if path.startswith("~"):
        return "'~' is not expanded: no shell runs these args; write an absolute path"
    m = _HOST_VAR.search(path)
    if m:
        return f"'{m.group(0)}' is not expanded: no shell runs these args; write an absolute path"
    return None


def _clean_path(p: str) -> str:
    """Go's path.Clean (what the CLI applies to some container paths)."""
    if not p:
        return "."
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


# Image reference grammar of github.com/distribution/reference.
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
    r"(?::[0-9]+)?"
)
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?")
_IMAGE_ID = re.compile(r"(?:sha256:)?[a-f0-9]{64}")


def _image_problem(image: str) -> Optional[str]:
    if image == "":
        return "the image name is empty"
    if _IMAGE_ID.fullmatch(image):
        return None
    m = _REFERENCE.fullmatch(image)
    if not m:
        if image.lower() != image and _REFERENCE.fullmatch(image.lower()):
            return f"invalid image reference '{image}': repository names must be lowercase"
        return (
            f"invalid image reference '{image}' (expected NAME[:TAG][@DIGEST], for "
            "example mcp/time, ghcr.io/org/server:1.2 or name@sha256:<64 hex>)"
        )
    if len(m.group("name")) > 255:
        return f"invalid image reference '{image}': the name is longer than 255 characters"
    return None


def _env_shown(value: str) -> str:
    """An -e value as it may appear in a message: the name only, never the value.

    The name ends at '=' or at whitespace ("TOKEN abc" is a mistake whose second word
    is the value)."""
    name = re.match(r"[^=\s]*", value).group(0)  # type: ignore[union-attr]
    if len(name) == len(value):
        return name
    return f"{name}=…" if value[len(name)] == "=" else f"{name} …"


# --- the parser ------------------------------------------------------------------


class _Run:
    """Accumulates one parse: the spec's fields and the issues found."""

    def __init__(self, env_block: Mapping[str, Secret], process_env: Mapping[str, str], base_dir: Path) -> None:
        self.env_block = env_block
        self.process_env = process_env
        self.base_dir = base_dir
        self.issues: List[ArgIssue] = []
        self.fields: Dict[str, object] = {}
        self.env_file_entries: List[Tuple[str, Secret]] = []
        self.env_flag_entries: Dict[str, Secret] = {}
        self.env_block_used: set = set()
        self.literal_env_names: set = set()
        self.labels: Dict[str, str] = {}
        self.label_file_labels: Dict[str, str] = {}
        self.lists: Dict[str, list] = {}
        self.maps: Dict[str, Dict[str, object]] = {}
        self.networks: List[str] = []

    # issues
    def error(self, flag: Optional[str], message: str) -> None:
        self.issues.append(ArgIssue(ERROR, flag, message))

    def warn(self, flag: Optional[str], message: str) -> None:
        self.issues.append(ArgIssue(WARNING, flag, message))

    def info(self, flag: Optional[str], message: str) -> None:
        self.issues.append(ArgIssue(INFO, flag, message))

    def add(self, key: str, item: object) -> None:
        self.lists.setdefault(key, []).append(item)

    def put(self, key: str, name: str, item: object) -> None:
        """Map-like data: a later entry for the same name wins, in the first's place."""
        self.maps.setdefault(key, {})[name] = item

    def host_file(self, path: str) -> Path:
        if "\0" in path:
            raise _Bad(f"{path!r}: a path cannot contain a NUL character")
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def lookup(self, name: str) -> Optional[Secret]:
        """A bare KEY's value: the server's env block, else the orchestrator's env."""
        if name in self.env_block:
            self.env_block_used.add(name)
            return self.env_block[name]
        if name in self.process_env:
            return Secret(self.process_env[name])
        return None


def _split_args(args: Sequence[str], run: _Run) -> Tuple[List[_Occurrence], Optional[str], Tuple[str, ...], bool]:
    """Flags, image and command, with pflag's rules (interspersed args off).

    Returns (occurrences, image, command, complete); complete is False when parsing had
    to stop (an unknown flag whose arity is unknown).
    """
    out: List[_Occurrence] = []
    items = list(args)
    i = 0
    while i < len(items):
        a = items[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        if re.search(r"\s", a):
            head = re.split(r"\s", a, maxsplit=1)[0]
            rest = a[len(head) :].strip()
            if _is_known_flag_text(head):
                shown = _env_shown(rest) if _names_env_flag(head) else rest
                whole = f"{head} {shown}"
                run.error(
                    head,
                    f'"{whole}" is a flag and its value in one array element. '
                    "No shell splits these args, so docker would read the value "
                    "with a leading space; write them as two elements: "
                    f'"{head}", "{shown}"',
                )
                # Go on as if split, to report what else is wrong in one pass.
                items[i : i + 1] = [head, rest] if rest else [head]
                continue
        if a.startswith("--"):
            body = a[2:]
            name, eq, value = body.partition("=")
            flag = _BY_NAME.get(name)
            if flag is None:
                run.error(f"--{name}", f"unknown docker run flag --{name}")
                return out, None, (), False
            if flag.takes_value:
                if not eq:
                    if i + 1 >= len(items):
                        run.error(f"--{name}", f"flag needs an argument: --{name}")
                        return out, None, (), False
                    i += 1
                    value = items[i]
            elif not eq:
                value = "true"
            out.append(_Occurrence(f"--{name}", flag, value))
            i += 1
            continue
        # a group of shorthand flags: -it, -ie FOO, -eVALUE, -e=VALUE, -i=false
        s = a[1:]
        j = 0
        while j < len(s):
            c = s[j]
            flag = _BY_SHORT.get(c)
            if flag is None:
                # Only the flags up to this one: the rest may be an env value.
                shown = f" (in {a[: j + 2]}{'…' if j + 1 < len(s) else ''})" if len(s) > 1 else ""
                run.error(f"-{c}", f"unknown docker run flag -{c}{shown}")
                return out, None, (), False
            rest = s[j + 1 :]
            if len(s) - j > 2 and rest.startswith("="):
                out.append(_Occurrence(f"-{c}", flag, rest[1:]))
                break
            if not flag.takes_value:
                out.append(_Occurrence(f"-{c}", flag, "true"))
                j += 1
                continue
            if rest:
                out.append(_Occurrence(f"-{c}", flag, rest))
                break
            if i + 1 >= len(items):
                run.error(f"-{c}", f"flag needs an argument: -{c}")
                return out, None, (), False
            i += 1
            out.append(_Occurrence(f"-{c}", flag, items[i]))
            break
        i += 1
    if i >= len(items):
        return out, None, (), True
    return out, items[i], tuple(items[i + 1 :]), True


def _is_known_flag_text(head: str) -> bool:
    """Is `head` a flag alone (no value attached), as in "-v ~/x:/x" or "-it --rm"?"""
    if head.startswith("--"):
        return head[2:] in _BY_NAME
    group = head[1:]
    if not group or any(c not in _BY_SHORT for c in group):
        return False
    return all(not _BY_SHORT[c].takes_value for c in group[:-1])


def _names_env_flag(head: str) -> bool:
    return head == "--env" or (not head.startswith("--") and head.endswith("e"))


# --- one handler per supported flag ------------------------------------------------

_Handler = Callable[[_Run, str, str], None]
_HANDLERS: Dict[str, _Handler] = {}


def _handles(*names: str) -> Callable[[_Handler], _Handler]:
    def register(fn: _Handler) -> _Handler:
        for n in names:
            _HANDLERS[n] = fn
        return fn

    return register


_BOOL_FIELDS = {
    "interactive": "stdin_open",
    "tty": "tty",
    "detach": "detach",
    "rm": "auto_remove",
    "init": "init",
    "privileged": "privileged",
    "read-only": "read_only",
    "no-healthcheck": "healthcheck_disabled",
    "oom-kill-disable": "oom_kill_disable",
}


def _bool_flag(run: _Run, written: str, value: str, name: str) -> None:
    run.fields[_BOOL_FIELDS[name]] = _parse_bool(value)


@_handles("env")
def _env(run: _Run, written: str, value: str) -> None:
    # Messages get "-e NAME" (never the value) in front: see parse_docker_run.
    name, eq, literal = value.partition("=")
    if _INPUT_PLACEHOLDER in name:
        raise _Bad(
            "a VS Code input variable (${input:…}) as the name, which only a VS Code "
            'client fills in; write -e NAME and put the value in the server\'s "env" '
            "block"
        )
    if name == "":
        raise _Bad("no variable name before '='")
    if re.search(r"\s", name):
        raise _Bad("a variable name cannot contain whitespace (write NAME=VALUE)")
    if eq:
        if _INPUT_PLACEHOLDER in literal:
            raise _Bad(
                "the value is a VS Code input variable (${input:…}), which only a VS "
                'Code client fills in; put the value in the server\'s "env" block and '
                f'pass it with "-e", "{name}"'
            )
        run.literal_env_names.add(name)
        secret = Secret(literal)
    else:
        found = run.lookup(name)
        if found is None:
            raise _Bad(f"no value for {name} in the server's env block or the orchestrator's environment")
        if _INPUT_PLACEHOLDER in found.reveal():
            raise _Bad(
                f"the value of {name} in the server's env block is a VS Code input "
                "variable (${input:…}), which only a VS Code client fills in; put "
                "the real value there"
            )
        secret = found
    # The CLI merges -e entries through a map: one entry per name, the last one wins.
    run.env_flag_entries[name] = secret


@_handles("env-file")
def _env_file(run: _Run, written: str, value: str) -> None:
    why = _unexpanded(value)
    if why:
        raise _Bad(f"{value}: {why}")
    path = run.host_file(value)
    for lineno, name, raw in _read_kv_file(path, value):
        if raw is None:
            found = run.lookup(name)
            if found is None:
                raise _Bad(
                    f"{value} line {lineno}: no value for {name} in the server's env "
                    "block or the orchestrator's environment"
                )
            secret = found
        else:
            secret = Secret(raw)
        if _INPUT_PLACEHOLDER in secret.reveal():
            raise _Bad(
                f"{value} line {lineno}: the value of {name} is a VS Code input "
                "variable (${input:…}), which only a VS Code client fills in"
            )
        run.env_file_entries.append((name, secret))


def _read_kv_file(path: Path, shown: str) -> List[Tuple[int, str, Optional[str]]]:
    """docker's env-file format: (line number, name, value or None for a bare NAME).

    Blank lines and '#' comments are skipped, leading whitespace is trimmed, values
    are kept as written (no quotes removed), a UTF-8 BOM is ignored.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Bad(f"{shown}: file not found ({path})") from None
    except IsADirectoryError:
        raise _Bad(f"{shown}: is a directory, not a file ({path})") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "not a valid path"
        raise _Bad(f"{shown}: cannot read {path}: {reason}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{shown} line {lineno}: not valid UTF-8") from None
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        name = name.lstrip(" \t")
        if re.search(r"[ \t]", name):
            raise _Bad(
                f"{shown} line {lineno}: '{_env_shown(name)}' is not NAME=VALUE (a "
                "variable name cannot contain whitespace)"
            )
        if not name:
            raise _Bad(f"{shown} line {lineno}: no variable name before '='")
        out.append((lineno, name.strip() if not eq else name, value if eq else None))
    return out


@_handles("label")
def _label(run: _Run, written: str, value: str) -> None:
    name, _, label_value = value.partition("=")
    if not name:
        raise _Bad(f"'{value}' has no label name before '='")
    if re.search(r"\s", name):
        raise _Bad(f"the label name '{name}' contains whitespace")
    run.labels[name] = label_value


@_handles("label-file")
def _label_file(run: _Run, written: str, value: str) -> None:
    why = _unexpanded(value)
    if why:
        raise _Bad(f"{value}: {why}")
    for lineno, name, label_value in _read_kv_file(run.host_file(value), value):
        if label_value is None:
            # The docker CLI drops a label-file line without '='.
            run.warn(
                written,
                f"{value} line {lineno}: '{name}' has no '=' and is "
                f"ignored, as the docker CLI does; write {name}= for an "
                "empty label",
            )
            continue
        run.label_file_labels[name] = label_value


_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


@_handles("volume")
def _volume(run: _Run, written: str, value: str) -> None:
    if value == "":
        raise _Bad("the volume spec is empty")
    parts = value.split(":")
    if any(p == "" for p in parts):
        raise _Bad(f"'{value}': empty section between colons")
    if len(parts) > 3:
        raise _Bad(f"'{value}': too many colons (expected [SOURCE:]TARGET[:OPTIONS])")
    if len(parts) == 1:
        target, source, options = parts[0], "", ""
    else:
        source, target = parts[0], parts[1]
        options = parts[2] if len(parts) == 3 else ""
    if not target.startswith("/"):
        raise _Bad(f"'{value}': the container path '{target}' must be absolute")
    if _clean_path(target) == "/":
        raise _Bad(f"'{value}': the container path cannot be '/'")
    read_only = False
    for opt in options.split(",") if options else []:
        if opt == "ro":
            read_only = True
        elif opt == "rw":
            read_only = False
        elif opt in ("z", "Z"):
            raise _Bad(
                f"'{value}': SELinux relabelling ('{opt}') is not supported by the "
                "orchestrator; label the host path yourself (chcon -Rt "
                "container_file_t PATH) and drop the option"
            )
        elif opt in ("shared", "rshared", "slave", "rslave", "private", "rprivate"):
            raise _Bad(
                f"'{value}': the option '{opt}' is not supported with -v by the "
                "orchestrator; use --mount type=bind,src=SOURCE,dst=TARGET,"
                f"bind-propagation={opt}"
            )
        elif opt == "nocopy":
            raise _Bad(
                f"'{value}': the option 'nocopy' is not supported with -v by the "
                "orchestrator; use --mount type=volume,src=NAME,dst=TARGET,"
                "volume-nocopy"
            )
        else:
            raise _Bad(f"'{value}': unknown volume option '{opt}' (use ro or rw)")
    if not source:
        run.add("volumes", VolumeSpec(value, "anonymous", "", target, read_only))
        return
    why = _unexpanded(source)
    if why:
        raise _Bad(f"'{value}': {why}")
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
        raise _Bad(
            f"'{value}': the host path '{source}' is relative; the docker CLI "
            "resolves it against its own working directory, which an MCP client "
            "does not define: write an absolute path"
        )
    if not _VOLUME_NAME.fullmatch(source):
        raise _Bad(
            f"'{value}': '{source}' is not a valid volume name (letters, digits, "
            "'_', '.', '-'); to mount a host directory write an absolute path"
        )
    run.add("volumes", VolumeSpec(value, "volume", source, target, read_only))


_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


@_handles("mount")
def _mount(run: _Run, written: str, value: str) -> None:
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise _Bad(f"'{value}': {exc}") from None
    fields = rows[0] if rows else []
    m: Dict[str, object] = {"type": "volume"}
    labels: Dict[str, str] = {}
    options: Dict[str, str] = {}

    def boolean(key: str, text: str) -> bool:
        try:
            return _parse_bool(text)
        except _Bad:
            raise _Bad(f"'{value}': invalid value for {key}: '{text}'") from None

    def pair(key: str, text: str, into: Dict[str, str]) -> None:
        k, _, v = text.partition("=")
        if not k:
            raise _Bad(f"'{value}': {key} needs NAME=VALUE")
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
                raise _Bad(f"'{value}': invalid field '{fld}': must be a key=value pair")
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
                raise _Bad(f"'{value}': invalid bind-propagation '{val}' (one of {', '.join(sorted(_PROPAGATIONS))})")
            m["bind_propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            m["bind_nonrecursive"] = boolean(key, val)
        elif key == "volume-nocopy":
            m["volume_nocopy"] = boolean(key, val)
        elif key == "volume-label":
            pair(key, val, labels)
        elif key == "volume-driver":
            if not val:
                raise _Bad(f"'{value}': volume-driver needs a driver name")
            m["volume_driver"] = val
        elif key == "volume-opt":
            pair(key, val, options)
        elif key == "tmpfs-size":
            try:
                m["tmpfs_size"] = _parse_size(val)
            except _Bad:
                raise _Bad(f"'{value}': invalid value for tmpfs-size: '{val}'") from None
        elif key == "tmpfs-mode":
            if not re.fullmatch(r"[0-7]+", val) or int(val, 8) > 0xFFFFFFFF:
                raise _Bad(f"'{value}': invalid value for tmpfs-mode: '{val}' (octal, for example 1770)")
            m["tmpfs_mode"] = int(val, 8)
        else:
            raise _Bad(f"'{value}': unexpected key '{key}' in '{fld}'")
    if labels:
        m["volume_labels"] = tuple(labels.items())
    if options:
        m["volume_options"] = tuple(options.items())
    kind = m["type"]
    if kind not in ("bind", "volume", "tmpfs"):
        raise _Bad(f"'{value}': mount type '{kind}' is not supported (bind, volume or tmpfs)")
    target = str(m.get("target", ""))
    if not target:
        raise _Bad(f"'{value}': target is required (target=/path/in/container)")
    if not target.startswith("/"):
        raise _Bad(f"'{value}': the target '{target}' must be an absolute path")
    spec = MountSpec(**m)  # type: ignore[arg-type]
    for has, prefix in (
        (spec.has_volume_options(), "volume"),
        (spec.has_bind_options(), "bind"),
        (spec.has_tmpfs_options(), "tmpfs"),
    ):
        if has and kind != prefix:
            raise _Bad(f"'{value}': cannot mix '{prefix}-*' options with mount type '{kind}'")
    source = spec.source
    if source:
        why = _unexpanded(source)
        if why:
            raise _Bad(f"'{value}': {why}")
    if kind == "bind":
        if not source:
            raise _Bad(f"'{value}': a bind mount needs source=/absolute/host/path")
        if not source.startswith("/"):
            raise _Bad(
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
            raise _Bad(
                f"'{value}': '{source}' is not a valid volume name (letters, digits, "
                "'_', '.', '-'); for a host directory use type=bind with an "
                "absolute source"
            )
    elif kind == "tmpfs" and source:
        raise _Bad(f"'{value}': a tmpfs mount takes no source")
    run.add("mounts", spec)


@_handles("tmpfs")
def _tmpfs(run: _Run, written: str, value: str) -> None:
    path, _, options = value.partition(":")
    if not path.startswith("/"):
        raise _Bad(f"'{value}': the container path '{path}' must be absolute")
    run.put("tmpfs", path, options)


def _parse_port_range(text: str, what: str) -> Tuple[int, int]:
    m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", text)
    if not m:
        raise _Bad(f"invalid {what} '{text}'")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    if end < start or end > 65535:
        raise _Bad(f"invalid {what} '{text}'")
    return start, end


_PROTOCOLS = ("tcp", "udp", "sctp")


@_handles("publish")
def _publish(run: _Run, written: str, value: str) -> None:
    spec = value
    if "=" in value:  # long syntax: published=8080,target=80[,protocol=udp]
        params = {"protocol": "tcp"}
        for param in value.split(","):
            k, eq, v = param.partition("=")
            if not eq:
                raise _Bad(f"'{value}': expected name=value, got '{param}'")
            params[k] = v
        spec = f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in _PROTOCOLS:
        raise _Bad(f"'{value}': unknown protocol '{proto}' (tcp, udp or sctp)")
    parts = rest.split(":")
    container = parts[-1]
    host_port = parts[-2] if len(parts) >= 2 else ""
    host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise _Bad(f"'{value}': invalid host IP '{host_ip}'") from None
    if not container:
        raise _Bad(f"'{value}': no container port")
    c_start, c_end = _parse_port_range(container, f"container port in '{value}'")
    if c_start == 0:
        raise _Bad(f"'{value}': the container port cannot be 0")
    h_start = h_end = 0
    if host_port:
        h_start, h_end = _parse_port_range(host_port, f"host port in '{value}'")
        if (c_end - c_start) != (h_end - h_start) and c_end != c_start:
            raise _Bad(f"'{value}': the host and container port ranges differ in size")
    for offset, port in enumerate(range(c_start, c_end + 1)):
        if not host_port:
            hp = ""
        elif c_end == c_start and h_end != h_start:
            hp = host_port  # one container port, a host range: Docker picks one
        else:
            hp = str(h_start + offset)
        run.add("ports", PortBinding(port, proto, host_ip, hp))


@_handles("expose")
def _expose(run: _Run, written: str, value: str) -> None:
    if ":" in value:
        raise _Bad(f"'{value}': --expose takes PORT[/PROTOCOL] or a range, not a mapping (use -p to publish)")
    port, _, proto = value.partition("/")
    proto = proto or "tcp"
    if proto not in _PROTOCOLS:
        raise _Bad(f"'{value}': unknown protocol '{proto}' (tcp, udp or sctp)")
    start, end = _parse_port_range(port, f"port in '{value}'")
    for p in range(start, end + 1):
        run.add("exposed", f"{p}/{proto}")


@_handles("add-host")
def _add_host(run: _Run, written: str, value: str) -> None:
    host, eq, ip = value.partition("=")
    if not eq:
        host, _, ip = value.partition(":")
    if not host or not ip:
        raise _Bad(f"'{value}': expected HOST:IP or HOST=IP")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip != "host-gateway":
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise _Bad(f"'{value}': '{ip}' is not an IP address (or host-gateway)") from None
    run.add("extra_hosts", f"{host}:{ip}")


def _go_ip_string(text: str) -> str:
    ip = ipaddress.ip_address(text.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


@_handles("dns")
def _dns(run: _Run, written: str, value: str) -> None:
    try:
        run.add("dns", _go_ip_string(value))
    except ValueError:
        raise _Bad(f"'{value}' is not an IP address") from None


_DOMAIN_RE = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
)


@_handles("dns-search")
def _dns_search(run: _Run, written: str, value: str) -> None:
    text = value.strip(" ")
    if text == ".":
        run.add("dns_search", text)
        return
    domain = text.rstrip()
    domain = domain[:-1] if domain.endswith(".") else domain
    if not _DOMAIN_RE.fullmatch(domain) or len(domain) >= 255:
        raise _Bad(f"'{value}' is not a valid domain")
    run.add("dns_search", domain)


@_handles("dns-option")
def _dns_option(run: _Run, written: str, value: str) -> None:
    run.add("dns_options", value)


def _capability(value: str) -> str:
    cap = value.upper()
    if cap != "ALL" and not cap.startswith("CAP_"):
        cap = "CAP_" + cap
    if not re.fullmatch(r"ALL|CAP_[A-Z0-9_]+", cap):
        raise _Bad(f"'{value}' is not a capability name (for example NET_ADMIN)")
    return cap


@_handles("cap-add")
def _cap_add(run: _Run, written: str, value: str) -> None:
    run.add("cap_add", _capability(value))


@_handles("cap-drop")
def _cap_drop(run: _Run, written: str, value: str) -> None:
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


@_handles("security-opt")
def _security_opt(run: _Run, written: str, value: str) -> None:
    key, eq, val = value.partition("=")
    if not eq and key != "no-new-privileges":
        key, eq, val = value.partition(":")
    if (not eq or val == "") and key != "no-new-privileges":
        raise _Bad(f"invalid --security-opt '{value}' (expected KEY=VALUE or no-new-privileges)")
    if value == "systempaths=unconfined":
        raise _Bad(
            "systempaths=unconfined is not supported by the orchestrator: it "
            "unmasks the host's /proc and /sys paths in the container"
        )
    if key == "seccomp" and val not in ("unconfined", "builtin"):
        why = _unexpanded(val)
        if why:
            raise _Bad(f"seccomp profile {val}: {why}")
        path = run.host_file(val)
        try:
            text = path.read_text(encoding="utf-8")
            json.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise _Bad(f"cannot read the seccomp profile {val} ({path}): {reason}") from None
        except ValueError as exc:
            raise _Bad(f"the seccomp profile {val} is not valid JSON: {exc}") from None
        except RecursionError:
            raise _Bad(f"the seccomp profile {val} is JSON nested too deeply") from None
        value = "seccomp=" + _compact_json(text)
    run.add("security_opt", value)


@_handles("group-add")
def _group_add(run: _Run, written: str, value: str) -> None:
    if not value:
        raise _Bad("the group is empty")
    run.add("group_add", value)


def _device_mode(text: str) -> bool:
    return bool(text) and len(set(text)) == len(text) and set(text) <= set("rwm")


@_handles("device")
def _device(run: _Run, written: str, value: str) -> None:
    parts = value.split(":")
    if len(parts) > 3 or not parts[0]:
        raise _Bad(f"'{value}': expected HOST_PATH[:CONTAINER_PATH][:PERMISSIONS]")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 2:
        if _device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = _clean_path(parts[1])
    elif len(parts) == 3:
        dst, perms = parts[1], parts[2]
        if not _device_mode(perms):
            raise _Bad(f"'{value}': bad permissions '{perms}' (a combination of r, w, m)")
    else:
        src = _clean_path(src)
    why = _unexpanded(src)
    if why:
        raise _Bad(f"'{value}': {why}")
    if "*" in src:
        raise _Bad(f"'{value}': device globs are not supported; name each device")
    if not src.startswith("/"):
        raise _Bad(f"'{value}': the host device path must be absolute")
    dst = dst or src
    if not dst.startswith("/"):
        raise _Bad(f"'{value}': {dst} is not an absolute path")
    run.add("devices", DeviceMapping(src, dst, perms))


@_handles("gpus")
def _gpus(run: _Run, written: str, value: str) -> None:
    try:
        fields = next(csv.reader([value], strict=True), [])
    except csv.Error as exc:
        raise _Bad(f"'{value}': {exc}") from None
    seen: set = set()
    count: Optional[int] = None
    driver, device_ids, caps, options = "", None, None, {}

    def parse_count(text: str) -> int:
        if text == "all":
            return -1
        try:
            return _parse_int(text)
        except _Bad:
            raise _Bad(f"'{value}': count must be an integer or all") from None

    for fld in fields:
        key, eq, val = fld.partition("=")
        if key in seen:
            raise _Bad(f"'{value}': gpu request key '{key}' can be specified only once")
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
            raise _Bad(f"'{value}': unexpected key '{key}'")
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


@_handles("ulimit")
def _ulimit(run: _Run, written: str, value: str) -> None:
    name, eq, limits = value.partition("=")
    if not eq:
        raise _Bad(f"'{value}': expected NAME=SOFT[:HARD]")
    if name not in _ULIMIT_NAMES:
        raise _Bad(f"'{value}': unknown ulimit '{name}' (one of {', '.join(sorted(_ULIMIT_NAMES))})")
    parts = limits.split(":")
    if len(parts) > 2:
        raise _Bad(f"'{value}': expected NAME=SOFT[:HARD]")
    soft = _parse_int(parts[0], "an integer limit")
    hard = _parse_int(parts[1], "an integer limit") if len(parts) == 2 else soft
    if hard != -1 and soft > hard:
        raise _Bad(f"'{value}': the soft limit {soft} is above the hard limit {hard}")
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


@_handles("sysctl")
def _sysctl(run: _Run, written: str, value: str) -> None:
    name, eq, val = value.partition("=")
    if not eq:
        raise _Bad(f"'{value}': expected NAME=VALUE")
    if name not in _SYSCTLS and not name.startswith(("net.", "fs.mqueue.")):
        raise _Bad(
            f"sysctl '{name}' is not allowed in a container (net.*, fs.mqueue.* and some kernel.* IPC settings are)"
        )
    run.put("sysctls", name, val)


@_handles("log-opt")
def _log_opt(run: _Run, written: str, value: str) -> None:
    name, _, val = value.partition("=")
    if not name:
        raise _Bad(f"'{value}': expected NAME=VALUE")
    run.put("log_options", name, val)


@_handles("log-driver")
def _log_driver(run: _Run, written: str, value: str) -> None:
    run.fields["log_driver"] = value


@_handles("restart")
def _restart(run: _Run, written: str, value: str) -> None:
    if value == "":
        run.fields.pop("restart", None)
        return
    name, colon, count = value.partition(":")
    if colon and not name:
        raise _Bad(f"'{value}': no policy before ':'")
    retries = 0
    if count:
        retries = _parse_int(count, "an integer retry count")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise _Bad(f"'{value}': unknown restart policy (no, always, unless-stopped, on-failure[:N])")
    if retries and name != "on-failure":
        raise _Bad(f"'{value}': a retry count only goes with on-failure")
    if retries < 0:
        raise _Bad(f"'{value}': the retry count cannot be negative")
    run.fields["restart"] = RestartPolicy(name, retries)


@_handles("pull")
def _pull(run: _Run, written: str, value: str) -> None:
    if value not in ("always", "missing", "never", ""):
        raise _Bad(f"invalid pull option '{value}' (always, missing or never)")
    run.fields["pull"] = value or "missing"


@_handles("platform")
def _platform(run: _Run, written: str, value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)?)?", value):
        raise _Bad(f"'{value}' is not a platform (OS[/ARCH[/VARIANT]], for example linux/amd64)")
    run.fields["platform"] = value


@_handles("network")
def _network(run: _Run, written: str, value: str) -> None:
    if "=" in value:
        raise _Bad(
            f"'{value}': the advanced --network syntax (name=...,alias=...) is not "
            "supported by the orchestrator; write --network NAME"
        )
    if not value.strip():
        raise _Bad("no network name")
    run.networks.append(value)


def _namespace_mode(allowed: Tuple[str, ...], container_ok: bool, field_name: str) -> _Handler:
    def handler(run: _Run, written: str, value: str) -> None:
        if value in allowed:
            pass
        elif container_ok and value.startswith("container:") and len(value) > 10:
            pass
        else:
            options = [a for a in allowed if a] + (["container:NAME"] if container_ok else [])
            raise _Bad(f"invalid mode '{value}' (one of {', '.join(options)})")
        run.fields[field_name] = value or None

    return handler


_HANDLERS["ipc"] = _namespace_mode(("", "none", "private", "shareable", "host"), True, "ipc")
_HANDLERS["pid"] = _namespace_mode(("", "host"), True, "pid")
_HANDLERS["uts"] = _namespace_mode(("", "host"), False, "uts")
_HANDLERS["userns"] = _namespace_mode(("", "host"), False, "userns")
_HANDLERS["cgroupns"] = _namespace_mode(("", "host", "private"), False, "cgroupns")


_CONTAINER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")


@_handles("name")
def _name(run: _Run, written: str, value: str) -> None:
    if not _CONTAINER_NAME.fullmatch(value):
        raise _Bad(f"invalid container name '{value}' (letters, digits, '_', '.', '-')")
    run.fields["name"] = value


@_handles("workdir")
def _workdir(run: _Run, written: str, value: str) -> None:
    if value and not value.startswith("/"):
        raise _Bad(f"the working directory '{value}' must be an absolute path")
    run.fields["working_dir"] = value or None


@_handles("entrypoint")
def _entrypoint(run: _Run, written: str, value: str) -> None:
    # One element, never split; "" clears the image's entrypoint (and its CMD).
    run.fields["entrypoint"] = (value,)


def _string_field(field_name: str) -> _Handler:
    def handler(run: _Run, written: str, value: str) -> None:
        run.fields[field_name] = value or None

    return handler


for _flag_name, _field_name in (
    ("user", "user"),
    ("hostname", "hostname"),
    ("domainname", "domainname"),
    ("runtime", "runtime"),
):
    _HANDLERS[_flag_name] = _string_field(_field_name)


def _cpuset(field_name: str) -> _Handler:
    def handler(run: _Run, written: str, value: str) -> None:
        if not re.fullmatch(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*", value):
            raise _Bad(f"'{value}' is not a list of CPUs or memory nodes (for example 0-3 or 0,2)")
        run.fields[field_name] = value

    return handler


_HANDLERS["cpuset-cpus"] = _cpuset("cpuset_cpus")
_HANDLERS["cpuset-mems"] = _cpuset("cpuset_mems")


@_handles("stop-signal")
def _stop_signal(run: _Run, written: str, value: str) -> None:
    if not re.fullmatch(r"[0-9]+|(SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?", value):
        raise _Bad(f"'{value}' is not a signal (for example SIGTERM, SIGINT or 15)")
    run.fields["stop_signal"] = value


def _int_field(
    field_name: str, low: Optional[int] = None, high: Optional[int] = None, extra: Tuple[int, ...] = ()
) -> _Handler:
    def handler(run: _Run, written: str, value: str) -> None:
        n = _parse_int(value)
        if n not in extra and ((low is not None and n < low) or (high is not None and n > high)):
            raise _Bad(f"{n} is out of range ({low} to {high})")
        run.fields[field_name] = n

    return handler


_HANDLERS["stop-timeout"] = _int_field("stop_timeout")
_HANDLERS["pids-limit"] = _int_field("pids_limit")
_HANDLERS["cpu-shares"] = _int_field("cpu_shares", 0)
_HANDLERS["cpu-period"] = _int_field("cpu_period", 0)
_HANDLERS["cpu-quota"] = _int_field("cpu_quota", -1)
_HANDLERS["memory-swappiness"] = _int_field("memory_swappiness", 0, 100, extra=(-1,))
_HANDLERS["oom-score-adj"] = _int_field("oom_score_adj", -1000, 1000)


def _size_field(field_name: str) -> _Handler:
    def handler(run: _Run, written: str, value: str) -> None:
        if field_name == "memory_swap" and value == "-1":
            run.fields[field_name] = -1
            return
        run.fields[field_name] = _parse_size(value)

    return handler


_HANDLERS["memory"] = _size_field("memory")
_HANDLERS["memory-reservation"] = _size_field("memory_reservation")
_HANDLERS["memory-swap"] = _size_field("memory_swap")
_HANDLERS["shm-size"] = _size_field("shm_size")


@_handles("cpus")
def _cpus(run: _Run, written: str, value: str) -> None:
    run.fields["nano_cpus"] = _parse_nano_cpus(value)


# --- checks across flags -----------------------------------------------------------

_MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less


def _check_combinations(run: _Run, f: Dict[str, object]) -> None:
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


def _check_mount_targets(run: _Run, f: Dict[str, object]) -> None:
    seen: Dict[str, str] = {}
    targets = [(v.target, "-v " + v.spec) for v in f.get("volumes", ())]  # type: ignore
    targets += [(m.target, "--mount target=" + m.target) for m in f.get("mounts", ())]  # type: ignore
    for target, shown in targets:
        key = _clean_path(target)
        if key in seen:
            run.error(
                shown.split(" ")[0],
                f"two mounts at {key} ({seen[key]} and {shown}); Docker refuses duplicate mount points",
            )
        seen[key] = shown


# --- entry points ---------------------------------------------------------------


def parse_docker_run(
    args: Sequence[str], *, env_block: Mapping[str, Secret], process_env: Mapping[str, str], base_dir: Path
) -> ParsedRun:
    """`args` are what follows "run" in the config's args array."""
    run = _Run(env_block, process_env, Path(base_dir))
    for secret in env_block.values():
        if not isinstance(secret, Secret):
            raise TypeError("env_block values must be Secret")
    occurrences, image, command, complete = _split_args(args, run)
    for occ in occurrences:
        flag = occ.flag
        if flag.unsupported:
            run.error(
                occ.written, f"docker run flag {occ.written} is not supported by the orchestrator: {flag.unsupported}"
            )
            continue
        if flag.no_effect:
            run.info(occ.written, f"{occ.written} has no effect here: {flag.no_effect}")
            continue
        if flag.name not in _ENV_FLAGS and _INPUT_PLACEHOLDER in occ.value:
            run.error(
                occ.written,
                f"{occ.written} {occ.value}: ${{input:…}} is a VS Code "
                "input variable that only a VS Code client fills in; "
                "write the value itself",
            )
            continue
        try:
            if flag.name in _BOOL_FIELDS:
                _bool_flag(run, occ.written, occ.value, flag.name)
            else:
                _HANDLERS[flag.name](run, occ.written, occ.value)
        except _Bad as bad:
            shown = f"{occ.written} {_env_shown(occ.value)}" if flag.name in _ENV_FLAGS else occ.written
            run.error(occ.written, f"{shown}: {bad}")
    if not complete:
        return ParsedRun(None, tuple(run.issues))

    if image is None:
        run.error(None, "no image: docker run needs an image after its flags")
    else:
        if _INPUT_PLACEHOLDER in image:
            run.error(
                None,
                f"the image '{image}' holds a VS Code input variable "
                "(${input:…}) that only a VS Code client fills in",
            )
        else:
            problem = _image_problem(image)
            if problem:
                run.error(None, problem)
    for arg in command:
        if _INPUT_PLACEHOLDER in arg:
            run.error(
                None,
                f"the command argument '{arg}' holds a VS Code input variable "
                "(${input:…}) that only a VS Code client fills in; write the "
                "value itself",
            )

    _warn_unused_env_block(run)

    f = run.fields
    f["env"] = tuple(run.env_file_entries) + tuple(run.env_flag_entries.items())
    f["env_file_count"] = len(run.env_file_entries)
    labels = dict(run.label_file_labels)
    labels.update(run.labels)
    f["labels"] = tuple(labels.items())
    for key in (
        "volumes",
        "mounts",
        "ports",
        "exposed",
        "extra_hosts",
        "dns",
        "dns_search",
        "dns_options",
        "security_opt",
        "group_add",
        "devices",
        "gpus",
    ):
        if key in run.lists:
            f[key] = tuple(run.lists[key])
    if "volumes" in f:
        # The CLI keeps -v entries in a set: an exact repeat is one entry.
        f["volumes"] = tuple({v.spec: v for v in f["volumes"]}.values())  # type: ignore
    if "exposed" in f:
        f["exposed"] = tuple(dict.fromkeys(f["exposed"]))  # type: ignore
    for key in ("cap_add", "cap_drop"):
        if key in run.lists:
            f[key] = tuple(sorted(set(run.lists[key])))
    for key in ("tmpfs", "sysctls", "log_options"):
        if key in run.maps:
            f[key] = tuple(run.maps[key].items())
    if "ulimits" in run.maps:
        f["ulimits"] = tuple(run.maps["ulimits"].values())
    if run.networks:
        f["network"] = run.networks[-1]
    _check_combinations(run, f)
    _check_mount_targets(run, f)

    if any(i.severity == ERROR for i in run.issues) or image is None:
        return ParsedRun(None, tuple(run.issues))
    spec = ContainerSpec(image=image, command=command, **f)  # type: ignore[arg-type]
    return ParsedRun(spec, tuple(run.issues))


def _warn_unused_env_block(run: _Run) -> None:
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
    for source in sorted({s for s in sockets if _clean_path(s) in _DOCKER_SOCKETS}):
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


__all__ = [
    "ArgIssue",
    "ContainerSpec",
    "ParsedRun",
    "RESERVED_LABEL_PREFIX",
    "create_kwargs",
    "orchestrated",
    "parse_docker_run",
    "spec_hash",
]
