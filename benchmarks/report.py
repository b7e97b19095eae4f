"""Tables as text for the terminal and as Markdown for the README; the JSON results."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    text_columns: int = 1  # the first columns hold text (left-aligned); the rest numbers

    def add(self, *cells: Any) -> None:
        self.rows.append(["" if c is None else str(c) for c in cells])

    def text(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i < self.text_columns else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        out = [self.title, line(self.columns), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in self.rows]
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        def esc(cell: str) -> str:
            return cell.replace("|", "\\|")

        out = [
            f"**{self.title}**",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" if i < self.text_columns else "---:" for i in range(len(self.columns))) + "|",
        ]
        out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes}


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def write_results(out_dir: Path, results: dict[str, Any], summary_md: str) -> Path:
    """bench-results/<stamp>.json and .md, plus latest.json / latest.md copies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"bench-{stamp}.json"
    text = json.dumps(results, indent=2, default=_plain)
    path.write_text(text + "\n")
    (out_dir / "latest.json").write_text(text + "\n")
    (out_dir / f"bench-{stamp}.md").write_text(summary_md + "\n")
    (out_dir / "latest.md").write_text(summary_md + "\n")
    return path


def _plain(value: Any) -> Any:
    to_dict: Optional[Any] = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return str(value)
