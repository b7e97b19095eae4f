"""The alb-agent's AWS calls as Prometheus metrics, counted from botocore's own call
events on the client (every operation, paginated or not, whoever makes it): by
operation and outcome (ok, or the AWS error code), and how long each took with its
retries."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import Counter, Histogram

from common import metrics

_registry = metrics.registry()
CALLS = Counter(
    "mcp_orchestrator_alb_aws_calls",
    "AWS ELBv2 API calls, by operation and outcome (ok, the AWS error code, or botocore's exception when none came)",
    ["operation", "outcome"],
    registry=_registry,
)
SECONDS = Histogram(
    "mcp_orchestrator_alb_aws_call_duration_seconds",
    "Duration of an AWS API call, retries included",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=_registry,
)
# AWS error codes are a known, bounded set; anything else (a proxy's text) is folded.
_MAX_CODE = 64


class AwsCallMetrics:
    def __init__(self, client: Any) -> None:
        self._started = threading.local()
        events = client.meta.events
        events.register("before-call.*.*", self._before)
        events.register("after-call.*.*", self._after)
        events.register("after-call-error.*.*", self._failed)

    # botocore passes every handler its event's name (...-call.elasticloadbalancingv2.Operation).

    def _before(self, **_: Any) -> None:
        self._started.at = time.monotonic()

    def _after(self, event_name: str = "", parsed: Any = None, **_: Any) -> None:
        error = parsed.get("Error") if isinstance(parsed, dict) else None
        code = error.get("Code") if isinstance(error, dict) else None
        self._done(event_name, str(code)[:_MAX_CODE] if code else "ok")

    def _failed(self, event_name: str = "", exception: Any = None, **_: Any) -> None:
        # No answer from AWS: botocore's exception class (EndpointConnectionError, ...).
        self._done(event_name, type(exception).__name__ if exception is not None else "no_answer")

    def _done(self, event_name: str, outcome: str) -> None:
        try:
            operation = event_name.rsplit(".", 1)[-1][:_MAX_CODE] or "unknown"
            started = getattr(self._started, "at", None)
            self._started.at = None
            CALLS.labels(operation, outcome).inc()
            if started is not None:
                SECONDS.labels(operation).observe(time.monotonic() - started)
        except Exception:  # counting must never fail an AWS call
            pass
