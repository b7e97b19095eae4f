"""The alb-agent process: REP `routes`, PUB `route-events`.

    python -m services.alb_agent.main [--settings PATH]

Requests (answered at once, whatever AWS is doing):
- `routes.apply`: the full wanted route set (servers not listed lose their routes), or a
  dry run. The AWS work happens on a worker thread; the reply carries the result when
  it is ready within APPLY_WAIT_SECONDS, else `pending` and the outcome follows as
  route.* events (the loop answers other requests meanwhile). An apply that failed
  before changing anything is an error reply (`unavailable` while AWS cannot be
  reached, else `failed`).
- `routes.status`: the latest known routing per server.
- `snapshot.get`: the full routing status (rules, priorities, target groups, targets,
  health, degraded flag) consistent with the event stream.

While AWS is unreachable every request is still answered from the last known state,
marked degraded.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional, Sequence

from common.process import (
    EXIT_UNUSABLE,
    open_service,
    process_parser,
    publish_on,
    resolve_paths,
    serve_metrics,
    serve_requests,
    start_process,
)
from common.protocol import Message, RoutesList, RoutesResult, RoutingStatus, Snapshot, to_plain
from common.reqrep import Deferred
from common.service import Service
from common.settings import Settings
from services.alb_agent import wire
from services.alb_agent.aws_client import make_client
from services.alb_agent.router import AlbRouter, ApplyResult
from services.alb_agent.standin import StandIn, StandInError, start_standin
from services.alb_agent.worker import RoutingWorker

log = logging.getLogger("alb-agent")

NAME = "alb-agent"
# Long enough for a small change to come back in the reply, well inside the callers'
# request timeout (2.5 s by default).
APPLY_WAIT_SECONDS = 1.0


class AlbAgent:
    """The agent's sockets and handlers around a RoutingWorker."""

    def __init__(
        self, service: Service, router: AlbRouter, settings: Settings, *, apply_wait_seconds: float = APPLY_WAIT_SECONDS
    ) -> None:
        self.apply_wait_seconds = apply_wait_seconds
        zmq_settings = settings.zmq
        # The worker thread has the loop publish its events at once.
        self.worker = RoutingWorker(router, notify=lambda: service.call_soon(self.publish_events))
        handlers = {"routes.apply": self.on_apply, "routes.status": self.on_status, "snapshot.get": self.on_snapshot}
        self.rep = serve_requests(service, NAME, zmq_settings.routes, handlers, zmq_settings)
        self.pub = publish_on(service, NAME, zmq_settings.route_events, zmq_settings)
        service.on_close(self.close)
        self.worker.start()

    # -- handlers ------------------------------------------------------------------------
    def on_apply(self, msg: Message) -> Deferred:
        routes, invalid = wire.routes_from_request(msg.body)
        dry_run = msg.body.dry_run
        job = self.worker.submit(routes, dry_run, invalid)

        def outcome(result: ApplyResult) -> RoutesResult:
            self.publish_events()  # events of this apply go out before its reply
            if result.failure is not None and not result.done:
                raise wire.failure_error(result.failure)
            return wire.routes_result(result, routes, self.worker.status())

        def pending() -> RoutesResult:
            return wire.pending_result(routes, dry_run, self.worker.status())

        return Deferred(job.future, self.apply_wait_seconds, pending, outcome)

    def on_status(self, msg: Message) -> RoutesList:
        status = self.worker.status()
        return RoutesList(
            routes=wire.route_infos(status, only=msg.body.server_id),
            status=status if msg.body.server_id is None else RoutingStatus(),
        )

    def on_snapshot(self, msg: Message) -> Snapshot:
        self.publish_events()  # the state below already includes them
        return self.pub.snapshot(to_plain(self.worker.status()))

    # -- events --------------------------------------------------------------------------
    def publish_events(self) -> None:
        for event in self.worker.take_events():
            message = wire.event_message(event)
            log.info("%s %s: %s", event.kind, event.server_id or "-", event.message)
            if message is not None:
                self.pub.publish(*message)

    def close(self) -> None:
        self.worker.stop()


def build_router(settings: Settings) -> tuple[AlbRouter, Optional[StandIn]]:
    config = settings.aws  # checked when the settings were loaded
    standin = None
    session = None
    if settings.routing_simulated:
        standin = start_standin(config)
        config, session = standin.config, standin.session
    return AlbRouter(config, make_client(config, session)), standin


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = process_parser(NAME, __doc__)
    parser.add_argument(
        "--apply-wait",
        type=float,
        default=APPLY_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long routes.apply waits for the result before answering "
        "'pending' (keep it below the callers' request timeout)",
    )
    args = parser.parse_args(argv)
    _, settings_path = resolve_paths(args)
    settings = start_process(NAME, settings_path)
    if settings is None:
        return EXIT_UNUSABLE
    try:
        router, standin = build_router(settings)
    except StandInError as exc:
        log.error("%s", exc)
        return 1  # the local stand-in may start next time: let systemd retry
    service = open_service(NAME, settings)
    if service is None:
        return EXIT_UNUSABLE
    try:
        serve_metrics(service, NAME, settings)
        AlbAgent(service, router, settings, apply_wait_seconds=max(args.apply_wait, 0.0))
        return service.run()
    finally:
        service.close()
        if standin is not None:
            standin.stop()


if __name__ == "__main__":
    sys.exit(main())
