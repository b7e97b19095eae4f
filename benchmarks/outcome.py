"""What one benchmark hands back: its tables, its numbers, and its goals met or missed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .report import Table


@dataclass
class Goal:
    benchmark: str
    what: str
    goal: str
    measured: str
    met: Optional[bool]  # None: no goal (reported only), or not measured

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "—"}[self.met]

    def to_dict(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "what": self.what,
            "goal": self.goal,
            "measured": self.measured,
            "met": self.met,
        }


@dataclass
class Outcome:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    available: bool = True
    reason: str = ""  # why it is not available, or why it stopped
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "available": self.available,
            "reason": self.reason,
            "seconds": round(self.seconds, 1),
            "tables": [t.to_dict() for t in self.tables],
            "goals": [g.to_dict() for g in self.goals],
            "data": self.data,
        }
