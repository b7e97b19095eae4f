"""A reconcile pass's container steps: side by side up to `parallel_steps`, stops and
removals first, the first servers first, and nothing more sent
once the container-agent is found down. A real Model; a stand-in for the link."""

from __future__ import annotations

import threading
import time

from common.protocol import ContainerInfo, ContainerList
from common.settings import Settings  # noqa: I001
from services.scheduler.agents import AgentUnavailable
from services.scheduler.config_keeper import apply_loaded
from services.scheduler.model import Model
from services.scheduler.reconciler import Reconciler
from tests.scheduler.test_scheduler_reload import load, server


class FakeContainers:
    """Answers like the container-agent, each change after `seconds`; records the order
    and how many were in flight at once."""

    def __init__(self, observed: list[ContainerInfo], seconds: float = 0.05, down_after: int = 10**6) -> None:
        self.observed = observed
        self.seconds = seconds
        self.down_after = down_after
        self.lock = threading.Lock()
        self.sent: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most = 0

    def call(self, type: str, body=None):
        if type == "container.status":
            return ContainerList(list(self.observed))
        with self.lock:
            if len(self.sent) >= self.down_after:
                raise AgentUnavailable("container-agent is unavailable (test)")
            self.sent.append((type, body.server_id))
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(self.seconds)
        with self.lock:
            self.in_flight -= 1
        return ContainerInfo(server_id=body.server_id, state="running", host_port=getattr(body, "host_port", None))

    def health(self):
        class H:
            available = True

        return H()

    def due(self) -> bool:
        return True


class FakeRoutes(FakeContainers):
    def call(self, type: str, body=None):
        raise AgentUnavailable("no alb-agent in this test")


def reconciler(tmp_path, wanted: int, observed: list[ContainerInfo], parallel: int, **fake) -> Reconciler:
    model = Model(Settings(), clock=lambda: 100.0)
    active, _ = apply_loaded(None, load(tmp_path, {f"s{i:03d}": server() for i in range(wanted)}), 1.0)
    model.set_config(active)
    containers = FakeContainers(observed, **fake)
    return Reconciler(model, containers, FakeRoutes([]), interval=3600, parallel_steps=parallel)


def test_steps_run_side_by_side_up_to_the_bound_in_order(tmp_path):
    r = reconciler(tmp_path, 12, [], parallel=4)
    r.run_pass(full=True)
    fake = r.containers
    assert fake.most == 4
    assert [sid for _, sid in fake.sent] == [f"s{i:03d}" for i in range(12)]  # sent in server order
    r.stop()


def test_one_at_a_time_when_parallel_steps_is_1(tmp_path):
    r = reconciler(tmp_path, 5, [], parallel=1)
    r.run_pass(full=True)
    assert r.containers.most == 1 and len(r.containers.sent) == 5
    r.stop()


def test_removals_go_before_the_starts(tmp_path):
    gone = [ContainerInfo(server_id=f"old{i}", container_id=f"c{i}", state="running") for i in range(3)]
    r = reconciler(tmp_path, 4, gone, parallel=8)
    r.run_pass(full=True)
    kinds = [t for t, _ in r.containers.sent]
    assert kinds == ["container.remove"] * 3 + ["container.ensure"] * 4
    r.stop()


def test_nothing_more_is_sent_once_the_agent_is_down(tmp_path):
    r = reconciler(tmp_path, 40, [], parallel=4, down_after=6)
    r.run_pass(full=True)
    # Those already sent finish; the rest wait for the next pass.
    assert len(r.containers.sent) == 6
    r.stop()


def test_a_bridge_event_shows_a_server_served_before_the_pass_ends(tmp_path):
    """A cold start is one long pass; a container.bridge event updates the server's state
    at once (the dashboard and status see it served), for the container the last read saw."""
    from common.protocol import BridgeState, ContainerEvent

    r = reconciler(tmp_path, 2, [], parallel=2)
    r.run_pass(full=True)
    model = r.model
    starting = ContainerInfo(
        server_id="s000", container_id="c0", state="running", host_port=8000, bridge=BridgeState.STARTING
    )
    model.observe_container(starting)
    assert model.server_states()["s000"].bridge == "starting"
    assert not model.observe_bridge(ContainerEvent("s000", "other", bridge="up"))  # not the container seen
    assert model.observe_bridge(ContainerEvent("s000", "c0", bridge="up", message="initialized"))
    assert model.server_states()["s000"].bridge == "ready"
    assert not model.observe_bridge(ContainerEvent("s000", "c0", bridge="up"))  # nothing new
    assert model.observe_bridge(ContainerEvent("s000", "c0", bridge="failed", message="no answer to initialize"))
    state = model.server_states()["s000"]
    assert state.bridge == "failed"
    assert not model.observe_bridge(ContainerEvent("s999", "c9", bridge="up"))  # unknown server
    r.stop()


class RecordingRoutes(FakeContainers):
    """An alb-agent that knows no route yet and records how many container steps had
    been sent when routes.apply arrived."""

    def __init__(self, containers: FakeContainers) -> None:
        super().__init__([])
        self.containers = containers
        self.applied_at: list[int] = []

    def call(self, type: str, body=None):
        from common.protocol import RoutesList, RoutesResult

        if type == "routes.status":
            return RoutesList()
        with self.containers.lock:
            self.applied_at.append(len(self.containers.sent))
        return RoutesResult(pending=True)


def test_the_routes_go_out_while_the_container_steps_run(tmp_path):
    """A cold start's routes do not wait for its container steps (they do not depend on
    them): the ALB rules of the first servers exist while the last ones are created."""
    model = Model(Settings(), clock=lambda: 100.0)
    active, _ = apply_loaded(None, load(tmp_path, {f"s{i:03d}": server() for i in range(10)}), 1.0)
    model.set_config(active)
    containers = FakeContainers([], seconds=0.1)
    routes = RecordingRoutes(containers)
    r = Reconciler(model, containers, routes, interval=3600, parallel_steps=1)
    r.run_pass(full=True)
    assert len(containers.sent) == 10 and len(routes.applied_at) == 1
    # Ten steps of 0.1 s one after another: the routes went out before the last was sent.
    assert routes.applied_at[0] < 10
    r.stop()
