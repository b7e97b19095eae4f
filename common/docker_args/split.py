"""The args split into flags, image and command, as spf13/pflag splits them for the CLI.

`--flag value`, `--flag=value`, `-e VALUE`, `-eVALUE`, `-e=VALUE`, combined booleans
(`-it`), a value flag last in a group (`-ie FOO`), `--rm=false`, `--` ends the flags,
and the first non-flag argument is the image: everything after it is the container's
command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from common.docker_args.flags import BY_NAME, BY_SHORT, Flag
from common.docker_args.run import Run
from common.docker_args.values import env_shown


@dataclass(frozen=True)
class Occurrence:
    written: str  # the flag as the user wrote it: "-e", "--env", "-i" (from "-it")
    flag: Flag
    value: str


def split_args(args: Sequence[str], run: Run) -> Tuple[List[Occurrence], Optional[str], Tuple[str, ...], bool]:
    """Flags, image and command, with pflag's rules (interspersed args off).

    Returns (occurrences, image, command, complete); complete is False when parsing had
    to stop (an unknown flag whose arity is unknown).
    """
    out: List[Occurrence] = []
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
                shown = env_shown(rest) if _ends_with_secret_flag(head) else rest
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
            flag = BY_NAME.get(name)
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
            out.append(Occurrence(f"--{name}", flag, value))
            i += 1
            continue
        # a group of shorthand flags: -it, -ie FOO, -eVALUE, -e=VALUE, -i=false
        s = a[1:]
        j = 0
        while j < len(s):
            c = s[j]
            flag = BY_SHORT.get(c)
            if flag is None:
                # Only the flags up to this one: the rest may be an env value.
                shown = f" (in {a[: j + 2]}{'…' if j + 1 < len(s) else ''})" if len(s) > 1 else ""
                run.error(f"-{c}", f"unknown docker run flag -{c}{shown}")
                return out, None, (), False
            rest = s[j + 1 :]
            if len(s) - j > 2 and rest.startswith("="):
                out.append(Occurrence(f"-{c}", flag, rest[1:]))
                break
            if not flag.takes_value:
                out.append(Occurrence(f"-{c}", flag, "true"))
                j += 1
                continue
            if rest:
                out.append(Occurrence(f"-{c}", flag, rest))
                break
            if i + 1 >= len(items):
                run.error(f"-{c}", f"flag needs an argument: -{c}")
                return out, None, (), False
            i += 1
            out.append(Occurrence(f"-{c}", flag, items[i]))
            break
        i += 1
    if i >= len(items):
        return out, None, (), True
    return out, items[i], tuple(items[i + 1 :]), True


def _is_known_flag_text(head: str) -> bool:
    """Is `head` a flag alone (no value attached), as in "-v ~/x:/x" or "-it --rm"?"""
    if head.startswith("--"):
        return head[2:] in BY_NAME
    group = head[1:]
    if not group or any(c not in BY_SHORT for c in group):
        return False
    return all(not BY_SHORT[c].takes_value for c in group[:-1])


def _ends_with_secret_flag(head: str) -> bool:
    """Does `head`, a flag alone, end with a flag whose value may be a secret?"""
    flag = BY_NAME[head[2:]] if head.startswith("--") else BY_SHORT[head[-1]]
    return flag.secret
