"""Parsers of single flag values: each returns the value, or raises Bad with a message.

Booleans, integers, sizes and CPU counts as the docker CLI reads them; host paths that
still hold shell syntax; Go's path.Clean; image references; and an env value cut down
to what a message may show.
"""

from __future__ import annotations

import posixpath
import re
from fractions import Fraction
from typing import Optional

from common.docker_args.run import Bad

# A VS Code input variable: only a VS Code client fills it in.
INPUT_PLACEHOLDER = "${input:"

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Bad(f"'{text}' is not a boolean (true or false)")


_INT64 = (-(1 << 63), (1 << 63) - 1)


def parse_int(text: str, what: str = "an integer") -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", text) or not _INT64[0] <= int(text) <= _INT64[1]:
        raise Bad(f"'{text}' is not {what}")
    return int(text)


_SIZE = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+) ?(?P<unit>[kKmMgGtTpP](?:[iI]?[bB])?|[bB])?")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Bytes, as docker's RAMInBytes: 512, 512b, 64k, 64m, 1.5g (binary units)."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise Bad(f"'{text}' is not a size (for example 512m or 2g)")
    size = float(m.group("num")) * _UNITS.get((m.group("unit") or "b")[0].lower(), 1)
    if size > _INT64[1]:
        raise Bad(f"'{text}' is too large")
    return int(size)


_CPUS = re.compile(
    r"[0-9]{1,12}(\.[0-9]{0,12})?([eE][-+]?[0-9]{1,2})?|\.[0-9]{1,12}"
    r"|[0-9]{1,12}/[0-9]{1,12}"
)


def parse_nano_cpus(text: str) -> int:
    try:
        if not _CPUS.fullmatch(text):  # also keeps Fraction away from huge exponents
            raise ValueError(text)
        cpus = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise Bad(f"'{text}' is not a number of CPUs (for example 0.5 or 2)") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise Bad(f"'{text}' is too precise (at most 9 decimals)")
    if nano <= 0:
        raise Bad(f"'{text}' must be more than 0")
    return int(nano)


_HOST_VAR = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def unexpanded(path: str) -> Optional[str]:
    """Why a host path still holds shell syntax, or None."""
    if path.startswith("~"):
        return "'~' is not expanded: no shell runs these args; write an absolute path"
    m = _HOST_VAR.search(path)
    if m:
        return f"'{m.group(0)}' is not expanded: no shell runs these args; write an absolute path"
    return None


def clean_path(p: str) -> str:
    """Go's path.Clean (what the CLI applies to some container paths)."""
    if not p:
        return "."
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"  # a regex: host names and registries

# Image reference grammar of github.com/distribution/reference.
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN = (
    rf"(?:{DOMAIN_NAME}|\[[0-9a-fA-F:.]+\])"
    r"(?::[0-9]+)?"
)
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?")
_IMAGE_ID = re.compile(r"(?:sha256:)?[a-f0-9]{64}")


def image_problem(image: str) -> Optional[str]:
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


def env_shown(value: str) -> str:
    """An -e value as it may appear in a message: the name only, never the value.

    The name ends at '=' or at whitespace ("TOKEN abc" is a mistake whose second word
    is the value)."""
    name = re.match(r"[^=\s]*", value).group(0)  # type: ignore[union-attr]
    if len(name) == len(value):
        return name
    return f"{name}=…" if value[len(name)] == "=" else f"{name} …"
