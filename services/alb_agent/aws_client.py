"""The ELBv2 client and the translation of AWS failures into typed errors.

Retries of throttling and transient errors are botocore's job (its retry modes, with
back-off); what still fails after them reaches us as one of the errors below.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Callable, Optional

import boto3
import botocore.exceptions
from botocore.config import Config

from common.settings import AwsSettings
from services.alb_agent.model import (
    ACCESS_DENIED,
    API_ERROR,
    NO_CREDENTIALS,
    NOT_FOUND,
    THROTTLED,
    UNREACHABLE,
    AwsFailure,
)

from .aws_metrics import AwsCallMetrics

_ACCESS_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "OperationNotPermitted",
}
_THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "PriorRequestNotComplete",
}
# The configured load balancer or listener is gone: nothing can be planned.
_SETUP_NOT_FOUND = {"LoadBalancerNotFound", "ListenerNotFound"}
_UNREACHABLE_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.HTTPClientError,
)


class AwsError(Exception):
    """An AWS call failed in a way that stops the whole read or apply."""

    def __init__(self, failure: AwsFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class AwsCallError(Exception):
    """An AWS call failed for one resource; the others can go on."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message


def make_client(config: AwsSettings, session: Optional[boto3.Session] = None) -> Any:
    """An elbv2 client for the configured region and endpoint (the usual credential chain).

    Each attempt may take `api_timeout_seconds` to connect and as long again for each read,
    so an endpoint that accepts connections and never answers fails like one that refuses.
    """
    botocore_config = Config(
        region_name=config.region,
        connect_timeout=config.api_timeout_seconds,
        read_timeout=config.api_timeout_seconds,
        retries={"mode": "standard", "max_attempts": config.api_max_attempts},
    )
    session = session or boto3.session.Session()
    client = session.client("elbv2", endpoint_url=config.endpoint_url or None, config=botocore_config)
    AwsCallMetrics(client)
    return client


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", "") or "")
    return ""


def _client_message(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "") or "") or str(exc)


def translate(operation: str, exc: BaseException) -> Exception:
    """The typed error for an exception raised by a boto3 call."""
    if isinstance(exc, _UNREACHABLE_ERRORS):
        return AwsError(AwsFailure(UNREACHABLE, operation, f"AWS is unreachable ({type(exc).__name__}): {exc}"))
    if isinstance(
        exc,
        (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
            botocore.exceptions.CredentialRetrievalError,
        ),
    ):
        return AwsError(AwsFailure(NO_CREDENTIALS, operation, f"no usable AWS credentials: {exc}"))
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        message = _client_message(exc)
        if code in _ACCESS_DENIED_CODES:
            return AwsError(
                AwsFailure(
                    ACCESS_DENIED, operation, f"access denied for elasticloadbalancing:{operation} ({code}): {message}"
                )
            )
        if code in _THROTTLING_CODES:
            return AwsError(
                AwsFailure(THROTTLED, operation, f"AWS kept throttling {operation} after retries ({code}): {message}")
            )
        if code in _SETUP_NOT_FOUND:
            return AwsError(AwsFailure(NOT_FOUND, operation, f"{code}: {message}"))
        return AwsCallError(operation, code or "Unknown", message)
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return AwsError(AwsFailure(API_ERROR, operation, f"{type(exc).__name__}: {exc}"))
    return exc


def call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """client.<operation>(**params), failures translated into AwsError / AwsCallError."""
    method = getattr(client, operation)
    try:
        return method(**params)
    except Exception as exc:  # translated below; anything unknown is re-raised as is
        translated = translate(operation, exc)
        if translated is exc:
            raise
        raise translated from exc


class ApiCallCounter:
    """The API calls a boto3 client makes, by operation (botocore's before-call hook):
    how tests and benchmarks check that a no-op reconcile reads little and writes nothing."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        self.order.append(model.name)

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith("Describe"))

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if not op.startswith("Describe"))

    def reset(self) -> None:
        self.calls.clear()
        self.order.clear()

    def take(self) -> tuple[int, int, dict[str, int]]:
        """(reads, writes, per operation) since the last take or reset."""
        out = (self.reads, self.writes, dict(sorted(self.calls.items())))
        self.reset()
        return out

    def summary(self) -> str:
        return ", ".join(f"{op}={n}" for op, n in sorted(self.calls.items()))


class CallWatch:
    """The AWS call a client is waiting on, if any, and since when.

    botocore's retries can keep one call going for attempts x timeout and more; this lets
    another thread (the agent's socket loop) see at once that AWS stopped answering.
    Thread-safe: written by the thread making calls, read by any other.
    """

    def __init__(self, client: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Optional[tuple[str, float]] = None
        events = client.meta.events
        events.register("before-call.*.*", self._started)
        events.register("after-call.*.*", self._ended)
        events.register("after-call-error.*.*", self._ended)

    def _started(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._current = (model.name, self._clock())

    def _ended(self, **_: Any) -> None:
        with self._lock:
            self._current = None

    def waiting(self) -> Optional[tuple[str, float]]:
        """(operation, seconds waited so far) of the call in flight, else None."""
        with self._lock:
            if self._current is None:
                return None
            operation, since = self._current
        return operation, self._clock() - since

    def overdue(self, timeout: float) -> Optional[AwsFailure]:
        """An `unreachable` failure when the call in flight has outlived `timeout`."""
        waiting = self.waiting()
        if waiting is None or waiting[1] <= timeout:
            return None
        operation, seconds = waiting
        return AwsFailure(
            UNREACHABLE,
            operation,
            f"AWS has not answered {operation} for {seconds:.0f} s (timeout {timeout:g} s per attempt; still trying)",
        )
