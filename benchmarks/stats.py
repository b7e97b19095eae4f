"""Percentiles, medians and spreads over repeated runs. Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass(frozen=True)
class Spread:
    """A value measured in several runs: the median and the range around it."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Iterable[Optional[float]]) -> "Spread":
        clean = [v for v in values if v is not None and not math.isnan(v)]
        if not clean:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(median(clean), min(clean), max(clean), len(clean))

    @property
    def known(self) -> bool:
        return self.runs > 0

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        """'2.31 (2.20–2.45)'; a single run shows only its value; unknown is '—'."""
        if not self.known:
            return "—"
        one = f"{self.median:.{digits}f}{unit}"
        if self.runs == 1 or self.low == self.high:
            return one
        return f"{one} ({self.low:.{digits}f}–{self.high:.{digits}f})"

    def to_dict(self) -> dict:
        def clean(v: float) -> Optional[float]:
            return None if math.isnan(v) else round(v, 6)

        return {"median": clean(self.median), "low": clean(self.low), "high": clean(self.high), "runs": self.runs}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """a / b, None when either is unknown or b is zero."""
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return None
    return a / b
