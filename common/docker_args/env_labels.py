"""Handlers of the flags that set the container's environment and labels: -e, --env-file,
-l, --label-file.

Env values are secrets: they are wrapped in `Secret` and no message shows one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Tuple

from common.docker_args.run import Bad, Run
from common.docker_args.values import INPUT_PLACEHOLDER, env_shown, unexpanded
from common.secrets import Secret


def env(run: Run, written: str, value: str) -> None:
    # Messages get "-e NAME" (never the value) in front: see parse_docker_run.
    name, eq, literal = value.partition("=")
    if INPUT_PLACEHOLDER in name:
        raise Bad(
            "a VS Code input variable (${input:…}) as the name, which only a VS Code "
            'client fills in; write -e NAME and put the value in the server\'s "env" '
            "block"
        )
    if name == "":
        raise Bad("no variable name before '='")
    if re.search(r"\s", name):
        raise Bad("a variable name cannot contain whitespace (write NAME=VALUE)")
    if eq:
        if INPUT_PLACEHOLDER in literal:
            raise Bad(
                "the value is a VS Code input variable (${input:…}), which only a VS "
                'Code client fills in; put the value in the server\'s "env" block and '
                f'pass it with "-e", "{name}"'
            )
        run.literal_env_names.add(name)
        secret = Secret(literal)
    else:
        found = run.lookup(name)
        if found is None:
            raise Bad(f"no value for {name} in the server's env block or the orchestrator's environment")
        if INPUT_PLACEHOLDER in found.reveal():
            raise Bad(
                f"the value of {name} in the server's env block is a VS Code input "
                "variable (${input:…}), which only a VS Code client fills in; put "
                "the real value there"
            )
        secret = found
    # The CLI merges -e entries through a map: one entry per name, the last one wins.
    run.env_flag_entries[name] = secret


def env_file(run: Run, written: str, value: str) -> None:
    why = unexpanded(value)
    if why:
        raise Bad(f"{value}: {why}")
    path = run.host_file(value)
    for lineno, name, raw in _read_kv_file(path, value):
        if raw is None:
            found = run.lookup(name)
            if found is None:
                raise Bad(
                    f"{value} line {lineno}: no value for {name} in the server's env "
                    "block or the orchestrator's environment"
                )
            secret = found
        else:
            secret = Secret(raw)
        if INPUT_PLACEHOLDER in secret.reveal():
            raise Bad(
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
        raise Bad(f"{shown}: file not found ({path})") from None
    except IsADirectoryError:
        raise Bad(f"{shown}: is a directory, not a file ({path})") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "not a valid path"
        raise Bad(f"{shown}: cannot read {path}: {reason}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Bad(f"{shown} line {lineno}: not valid UTF-8") from None
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        name = name.lstrip(" \t")
        if re.search(r"[ \t]", name):
            raise Bad(
                f"{shown} line {lineno}: '{env_shown(name)}' is not NAME=VALUE (a "
                "variable name cannot contain whitespace)"
            )
        if not name:
            raise Bad(f"{shown} line {lineno}: no variable name before '='")
        out.append((lineno, name.strip() if not eq else name, value if eq else None))
    return out


def label(run: Run, written: str, value: str) -> None:
    name, _, label_value = value.partition("=")
    if not name:
        raise Bad(f"'{value}' has no label name before '='")
    if re.search(r"\s", name):
        raise Bad(f"the label name '{name}' contains whitespace")
    run.labels[name] = label_value


def label_file(run: Run, written: str, value: str) -> None:
    why = unexpanded(value)
    if why:
        raise Bad(f"{value}: {why}")
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
