"""Polling with a deadline: the one way tests and benchmarks wait for something."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The deadline passed (an AssertionError: pytest reports it as a failed check)."""


def wait_for(
    condition: Callable[[], T],
    timeout: float = 20.0,
    what: str = "a condition",
    interval: float = 0.05,
    *,
    ignoring: tuple[type[BaseException], ...] = (),
    explain: Optional[Callable[[], str]] = None,
) -> T:
    """The first truthy value of `condition()`, asked every `interval` seconds and once
    more at the deadline; WaitTimeout after `timeout` seconds.

    `ignoring`: exceptions that mean "not yet" (the last one is named in the error).
    `explain`: called on timeout, its text (logs, a journal) is added to the error.
    """
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except ignoring as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    message = f"timed out after {timeout:g} s waiting for {what}"
    if last_error is not None:
        message += f" (last error: {last_error})"
    if explain is not None:
        message += f"\n{explain()}"
    raise WaitTimeout(message)


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> tuple[Any, float]:
    """For measuring: (the first truthy value of `condition`, seconds it took), or
    (None, seconds) when the deadline passed."""
    start = time.monotonic()
    try:
        value = wait_for(condition, timeout, interval=interval)
    except WaitTimeout:
        value = None
    return value, time.monotonic() - start
