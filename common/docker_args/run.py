"""What one parse accumulates, and how a flag handler reports a bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from common.container_spec import ArgIssue
from common.secrets import Secret

ERROR, WARNING, INFO = "error", "warning", "info"


class Bad(Exception):
    """An invalid flag value; the message is shown to the user (never a secret)."""


class Run:
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
            raise Bad(f"{path!r}: a path cannot contain a NUL character")
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


# What a supported flag does with one occurrence: (run, the flag as written, its value).
# It records into `run`, or raises Bad.
Handler = Callable[[Run, str, str], None]
