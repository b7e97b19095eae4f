"""The CLI's side of the scheduler's control socket.

One short request at a time; a scheduler that does not answer is an ordinary,
clearly worded outcome (`SchedulerUnavailable`), never a hang.
"""

from __future__ import annotations

from typing import Any, Optional

import zmq

from common.protocol import CodedError, ControlAction
from common.reqrep import RemoteError, ReqClient
from common.settings import Settings

DEFAULT_TIMEOUT_MS = 3000


class SchedulerUnavailable(Exception):
    pass


class ControlClient:
    def __init__(self, settings: Settings, *, timeout_ms: int = DEFAULT_TIMEOUT_MS, retries: int = 0) -> None:
        self.endpoint = settings.zmq.scheduler_control
        self._ctx = zmq.Context()
        self._client = ReqClient(
            self._ctx,
            self.endpoint,
            timeout_ms=timeout_ms,
            retries=retries,
            src="cli",
            max_bytes=settings.zmq.max_message_bytes,
        )

    def call(self, type: str, body: Any = None) -> Any:
        """The reply body; RemoteError when the scheduler refused; SchedulerUnavailable
        when it did not answer."""
        try:
            return self._client.call(type, body)
        except RemoteError:
            raise
        except CodedError as exc:
            raise SchedulerUnavailable(
                f"the scheduler does not answer at {self.endpoint} ({exc.message}).\n"
                f"Is it running? Start everything with `mcp-orchestrator run` (or "
                f"`systemctl start mcp-orchestrator.target`), and check that --settings "
                f"names the same settings.conf (its [zmq] endpoints)."
            ) from None

    def status(self) -> Any:
        return self.call("control.status")

    def plan(self) -> Any:
        return self.call("control.plan")

    def action(self, action: str, server_id: Optional[str] = None) -> Any:
        return self.call("control.action", ControlAction(action=action, server_id=server_id))

    def answers(self) -> bool:
        try:
            self._client.call("ping")
            return True
        except CodedError:
            return False

    def close(self) -> None:
        self._client.close()
        self._ctx.destroy(linger=0)

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
