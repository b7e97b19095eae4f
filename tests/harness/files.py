"""The two files every process reads: settings.conf and mcp.config.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

Sections = Mapping[str, Mapping[str, Any]]


def write_atomically(path: Path, text: str) -> None:
    # Written beside and renamed: a file watch never sees half a file.
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def merged(*layers: Sections) -> dict[str, dict[str, Any]]:
    """The sections of all layers, later layers adding keys to (or replacing keys of)
    earlier ones."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def settings_text(*layers: Sections) -> str:
    """settings.conf (INI) with the sections of `layers` (see merged)."""
    return "".join(
        f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
        for section, values in merged(*layers).items()
    )


def write_settings(path: Path, *layers: Sections) -> Path:
    path.write_text(settings_text(*layers))
    return path


def write_config(path: Path, servers: Mapping[str, Any]) -> None:
    write_atomically(path, json.dumps({"mcpServers": dict(servers)}, indent=2))
