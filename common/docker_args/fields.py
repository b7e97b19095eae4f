"""Handlers of the flags that set one field of the spec.

Most are made by a kind (a boolean, a string, an integer in a range, a size, a CPU
set, a namespace mode) that the flag table names with the field; the rest check a
value of their own shape.
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

from common.container_spec import RestartPolicy
from common.docker_args.run import Bad, Handler, Run
from common.docker_args.values import parse_bool, parse_int, parse_nano_cpus, parse_size

# --- kinds: a handler for a field, made from the field's name and its bounds --------------


def bool_field(field_name: str) -> Handler:
    def handler(run: Run, written: str, value: str) -> None:
        run.fields[field_name] = parse_bool(value)

    return handler


def string_field(field_name: str) -> Handler:
    """A string; "" means unset (Docker's default)."""

    def handler(run: Run, written: str, value: str) -> None:
        run.fields[field_name] = value or None

    return handler


def int_field(
    field_name: str, low: Optional[int] = None, high: Optional[int] = None, extra: Tuple[int, ...] = ()
) -> Handler:
    """An integer in low..high, or one of `extra` (values with a meaning of their own)."""

    def handler(run: Run, written: str, value: str) -> None:
        n = parse_int(value)
        if n not in extra and ((low is not None and n < low) or (high is not None and n > high)):
            raise Bad(f"{n} is out of range ({low} to {high})")
        run.fields[field_name] = n

    return handler


def size_field(field_name: str, unlimited: bool = False) -> Handler:
    """A size in bytes; with `unlimited`, -1 also (no limit)."""

    def handler(run: Run, written: str, value: str) -> None:
        if unlimited and value == "-1":
            run.fields[field_name] = -1
            return
        run.fields[field_name] = parse_size(value)

    return handler


def cpuset(field_name: str) -> Handler:
    def handler(run: Run, written: str, value: str) -> None:
        if not re.fullmatch(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*", value):
            raise Bad(f"'{value}' is not a list of CPUs or memory nodes (for example 0-3 or 0,2)")
        run.fields[field_name] = value

    return handler


def namespace_mode(field_name: str, allowed: Tuple[str, ...], container_ok: bool) -> Handler:
    """One of `allowed` ("" is Docker's default), or container:NAME if `container_ok`."""

    def handler(run: Run, written: str, value: str) -> None:
        if value in allowed:
            pass
        elif container_ok and value.startswith("container:") and len(value) > 10:
            pass
        else:
            options = [a for a in allowed if a] + (["container:NAME"] if container_ok else [])
            raise Bad(f"invalid mode '{value}' (one of {', '.join(options)})")
        run.fields[field_name] = value or None

    return handler


# --- fields whose values have a shape of their own -----------------------------------------

_CONTAINER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def container_name(run: Run, written: str, value: str) -> None:
    if not _CONTAINER_NAME.fullmatch(value):
        raise Bad(f"invalid container name '{value}' (letters, digits, '_', '.', '-')")
    run.fields["name"] = value


def workdir(run: Run, written: str, value: str) -> None:
    if value and not value.startswith("/"):
        raise Bad(f"the working directory '{value}' must be an absolute path")
    run.fields["working_dir"] = value or None


def entrypoint(run: Run, written: str, value: str) -> None:
    # One element, never split; "" clears the image's entrypoint (and its CMD).
    run.fields["entrypoint"] = (value,)


def stop_signal(run: Run, written: str, value: str) -> None:
    if not re.fullmatch(r"[0-9]+|(SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?", value):
        raise Bad(f"'{value}' is not a signal (for example SIGTERM, SIGINT or 15)")
    run.fields["stop_signal"] = value


def cpus(run: Run, written: str, value: str) -> None:
    run.fields["nano_cpus"] = parse_nano_cpus(value)


def log_driver(run: Run, written: str, value: str) -> None:
    run.fields["log_driver"] = value


def log_opt(run: Run, written: str, value: str) -> None:
    name, _, val = value.partition("=")
    if not name:
        raise Bad(f"'{value}': expected NAME=VALUE")
    run.put("log_options", name, val)


def restart(run: Run, written: str, value: str) -> None:
    if value == "":
        run.fields.pop("restart", None)
        return
    name, colon, count = value.partition(":")
    if colon and not name:
        raise Bad(f"'{value}': no policy before ':'")
    retries = 0
    if count:
        retries = parse_int(count, "an integer retry count")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise Bad(f"'{value}': unknown restart policy (no, always, unless-stopped, on-failure[:N])")
    if retries and name != "on-failure":
        raise Bad(f"'{value}': a retry count only goes with on-failure")
    if retries < 0:
        raise Bad(f"'{value}': the retry count cannot be negative")
    run.fields["restart"] = RestartPolicy(name, retries)


def pull(run: Run, written: str, value: str) -> None:
    if value not in ("always", "missing", "never", ""):
        raise Bad(f"invalid pull option '{value}' (always, missing or never)")
    run.fields["pull"] = value or "missing"


def platform(run: Run, written: str, value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)?)?", value):
        raise Bad(f"'{value}' is not a platform (OS[/ARCH[/VARIANT]], for example linux/amd64)")
    run.fields["platform"] = value
