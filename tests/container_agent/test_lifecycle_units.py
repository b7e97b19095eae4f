"""Pure logic of the container lifecycle: labels, the decision, events, status.

No Docker here: the decisions are checked exhaustively over plain data.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest

from common import container_labels as labels
from common.container_labels import HTTP, Placement
from common.protocol import ErrorCode, ServiceError
from common.secrets import Secret
from services.container_agent import events
from services.container_agent.events import ContainerChange, resync_changes, translate
from services.container_agent.plan import STARTABLE, Observed, Remedy, decide, pull_needed
from services.container_agent.specs import ServerSpecs
from services.container_agent.status import LastExit, clean_lines, container_info, split_log

# --- labels ---------------------------------------------------------------------------


def test_labels_record_the_placement_and_ownership():
    p = Placement("time", 8101, "abc123")
    got = labels.labels_for(p, "prod", {"team": "x", labels.MANAGED: "no"})
    assert got == {
        "team": "x",
        "mcp-orchestrator.managed": "true",
        "mcp-orchestrator.cluster": "prod",
        "mcp-orchestrator.server-id": "time",
        "mcp-orchestrator.host-port": "8101",
        "mcp-orchestrator.spec-hash": "abc123",
        "mcp-orchestrator.transport": "stdio",
    }
    assert labels.placement_of(got) == p
    assert labels.is_ours(got, "prod")
    assert not labels.is_ours(got, "staging")  # another cluster's container: not ours


def test_http_transport_labels_round_trip():
    p = Placement("web", 8102, "h", HTTP, 3000, "/api/mcp")
    got = labels.labels_for(p, "c")
    assert got["mcp-orchestrator.http-port"] == "3000"
    assert got["mcp-orchestrator.http-path"] == "/api/mcp"
    assert labels.placement_of(got) == p


@pytest.mark.parametrize(
    "found",
    [
        None,
        {},
        {"mcp-orchestrator.test": "1"},
        {"mcp-orchestrator.managed": "true", "mcp-orchestrator.cluster": "c"},  # no server id
        {"mcp-orchestrator.managed": "false", "mcp-orchestrator.cluster": "c", "mcp-orchestrator.server-id": "a"},
        {"mcp-orchestrator.managed": "true", "mcp-orchestrator.server-id": "a"},  # no cluster
    ],
)
def test_containers_without_all_our_labels_are_not_ours(found):
    assert not labels.is_ours(found, "c")


@pytest.mark.parametrize(
    "text,port", [("8101", 8101), ("", None), ("x", None), ("0", None), ("70000", None), ("-1", None), (None, None)]
)
def test_an_unreadable_port_label_is_none(text, port):
    found = {labels.SERVER_ID: "a"}
    if text is not None:
        found[labels.HOST_PORT] = text
    assert labels.placement_of(found).host_port == port


def test_extra_labels_are_parsed_and_cannot_replace_ours():
    extra, problems = labels.parse_extra(["mcp-orchestrator.test=1", "a=b=c", "empty="])
    assert extra == {"mcp-orchestrator.test": "1", "a": "b=c", "empty": ""}
    assert problems == []
    _, problems = labels.parse_extra(["novalue", "=x", "mcp-orchestrator.server-id=evil"])
    assert len(problems) == 3
    assert "bookkeeping" in problems[2]


def test_filters_select_this_cluster_only():
    assert labels.event_filters("c") == {
        "type": "container",
        "label": ["mcp-orchestrator.managed=true", "mcp-orchestrator.cluster=c"],
    }
    assert labels.list_filters("c")["label"] == labels.event_filters("c")["label"]


# --- the decision ---------------------------------------------------------------------

WANTED = Placement("time", 8101, "h1")
DOCKER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


def observed(state: str = "running", cid: str = "c1", **changes) -> Observed:
    fields = dict(server_id="time", host_port=8101, spec_hash="h1")
    fields.update(changes)
    return Observed(cid, state, True, Placement(**fields))


def test_no_container_is_created():
    assert decide(WANTED, None).action is Remedy.CREATE
    assert decide(WANTED, None, served_container_id="gone").action is Remedy.CREATE


@pytest.mark.parametrize("state", DOCKER_STATES)
def test_a_container_that_is_not_ours_is_a_conflict_in_every_state(state):
    foreign = Observed("c9", state, False, None)
    decision = decide(WANTED, foreign, served_container_id="c9")
    assert decision.action is Remedy.CONFLICT
    assert "not managed" in decision.reason


@pytest.mark.parametrize("state", DOCKER_STATES)
@pytest.mark.parametrize(
    "drift",
    [
        dict(spec_hash="h0"),
        dict(host_port=8102),
        dict(host_port=None),
        dict(server_id="other"),
        dict(transport=HTTP, http_port=80),
    ],
)
def test_any_drift_recreates_in_every_state(state, drift):
    decision = decide(WANTED, observed(state, **drift), served_container_id="c1")
    assert decision.action is Remedy.RECREATE
    assert decision.reason


def test_a_transport_change_recreates():
    wanted = Placement("web", 8101, "h1", HTTP, 3000, "/mcp")
    have = Observed("c1", "running", True, Placement("web", 8101, "h1", HTTP, 3000, "/sse"))
    assert decide(wanted, have).action is Remedy.RECREATE
    same = Observed("c1", "running", True, wanted)
    assert decide(wanted, same, "").action is Remedy.ADOPT


def test_every_state_and_served_combination_of_a_matching_container():
    for state, served in itertools.product(DOCKER_STATES, (None, "c1", "c0")):
        action = decide(WANTED, observed(state), served_container_id=served).action
        if state == "running":
            expected = Remedy.NOTHING if served == "c1" else Remedy.ADOPT
        elif state in STARTABLE:
            expected = Remedy.START
        else:
            expected = Remedy.RECREATE
        assert action is expected, (state, served)


@pytest.mark.parametrize(
    "policy,present,expected",
    [
        ("missing", True, (False, None)),
        ("missing", False, (True, None)),
        ("always", True, (True, None)),
        ("always", False, (True, None)),
        ("never", True, (False, None)),
    ],
)
def test_pull_policy(policy, present, expected):
    assert pull_needed(policy, present) == expected


def test_pull_never_without_the_image_is_an_error():
    pull, problem = pull_needed("never", False)
    assert not pull and "--pull=never" in problem
    pull, problem = pull_needed("sometimes", True)
    assert not pull and "unknown --pull policy" in problem


# --- Docker events --------------------------------------------------------------------

OUR_ATTRS = {
    "mcp-orchestrator.managed": "true",
    "mcp-orchestrator.cluster": "c",
    "mcp-orchestrator.server-id": "time",
    "mcp-orchestrator.host-port": "8101",
    "mcp-orchestrator.spec-hash": "h1",
    "name": "mcp-time",
    "image": "img",
}


def docker_event(action: str, **attrs) -> dict:
    return {
        "status": action,
        "id": "cid",
        "Type": "container",
        "Remedy": action,
        "Actor": {"ID": "cid", "Attributes": {**OUR_ATTRS, **attrs}},
        "scope": "local",
        "time": 1700000000,
        "timeNano": 1700000000123456789,
    }


def test_die_is_an_exit_with_its_code():
    change = translate(docker_event("die", exitCode="137"))
    assert change == ContainerChange(
        events.EXITED, "time", "cid", Placement("time", 8101, "h1"), exit_code=137, time_nano=1700000000123456789
    )


@pytest.mark.parametrize(
    "action,kind,health",
    [
        ("start", events.STARTED, None),
        ("oom", events.OOM, None),
        ("health_status: healthy", events.HEALTH, "healthy"),
        ("health_status: unhealthy", events.HEALTH, "unhealthy"),
        ("destroy", events.DESTROYED, None),
    ],
)
def test_events_that_matter(action, kind, health):
    change = translate(docker_event(action))
    assert change.kind == kind and change.health == health and change.server_id == "time"


@pytest.mark.parametrize("action", ["create", "attach", "kill", "stop", "exec_start: sh", "resize", "rename", "pause"])
def test_events_that_change_nothing_reported(action):
    assert translate(docker_event(action)) is None


def test_events_of_other_objects_or_without_a_server_are_ignored():
    assert translate({**docker_event("start"), "Type": "network"}) is None
    event = docker_event("start")
    del event["Actor"]["Attributes"]["mcp-orchestrator.server-id"]
    assert translate(event) is None
    assert translate({}) is None


def test_an_odd_exit_code_or_time_does_not_break_translation():
    change = translate({**docker_event("die", exitCode="?"), "timeNano": None, "time": 2})
    assert change.exit_code is None and change.time_nano == 2_000_000_000


def test_resync_reports_what_changed_while_the_stream_was_down():
    p = Placement("a", 8101, "h")
    known = {"c1": ("a", p), "c2": ("b", p), "c3": ("c", p)}
    now = {
        "c1": ("a", "running", p, None),
        "c2": ("b", "exited", p, 1),
        "c4": ("d", "running", p, None),
        "c5": ("e", "exited", p, 0),
    }
    got = {(c.kind, c.container_id, c.exit_code) for c in resync_changes(known, now)}
    assert got == {(events.EXITED, "c2", 1), (events.EXITED, "c3", None), (events.STARTED, "c4", None)}


# --- status ---------------------------------------------------------------------------


def inspect_attrs(status: str = "running", **state) -> dict:
    return {
        "Id": "cid",
        "Name": "/mcp-time",
        "RestartCount": 0,
        "Config": {"Image": "img:1", "Labels": OUR_ATTRS},
        "State": {
            "Status": status,
            "ExitCode": 0,
            "OOMKilled": False,
            "StartedAt": "2026-01-01T00:00:00Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            **state,
        },
    }


def test_status_of_a_running_container():
    info = container_info("time", inspect_attrs(), bridge="ready")
    assert (info.container_id, info.name, info.image, info.state) == ("cid", "mcp-time", "img:1", "running")
    assert (info.host_port, info.spec_hash, info.bridge) == (8101, "h1", "ready")
    assert info.exit_code is None and info.finished_at is None
    assert info.started_at == "2026-01-01T00:00:00Z"


def test_status_of_an_exited_container_shows_how_it_ended():
    attrs = inspect_attrs(
        "exited", ExitCode=137, OOMKilled=True, FinishedAt="2026-01-01T00:01:00Z", Health={"Status": "unhealthy"}
    )
    info = container_info("time", attrs, stderr_tail=["x"] * 30)
    assert (info.exit_code, info.oom_killed, info.health) == (137, True, "unhealthy")
    assert info.finished_at == "2026-01-01T00:01:00Z"
    assert len(info.stderr_tail) == 10


def test_status_without_a_container_keeps_the_last_exit():
    last = LastExit("old", 3, False, "2026-01-01T00:01:00Z", ("boom",))
    info = container_info("time", None, last_exit=last, error="start failed", pending="ensure")
    assert (info.state, info.container_id, info.exit_code) == ("missing", None, 3)
    assert info.stderr_tail == ["boom"] and info.error == "start failed"
    assert info.pending == "ensure" and info.name == "mcp-time"
    assert container_info("x", None).exit_code is None


def test_status_masks_secret_values_in_stderr_lines():
    token = "tok-" + "9" * 20
    Secret(token)  # a value this process knows as secret
    info = container_info("time", None, stderr_tail=[f"auth with {token} failed"])
    assert token not in json.dumps(info.stderr_tail)
    assert "***" in info.stderr_tail[0]


def test_log_lines_are_split_cut_and_limited():
    assert split_log(b"") == []
    assert split_log(b"a\r\nb\n") == ["a", "b"]
    assert split_log(b"a\nb") == ["a", "b"]
    assert split_log(b"\xff\n") == ["\ufffd"]
    assert clean_lines(["1", "2", "3"], 2) == ["2", "3"]
    assert clean_lines(["1"], 0) == []
    assert clean_lines(["x" * 5000], 1)[0].endswith("[cut]")


# --- specs ----------------------------------------------------------------------------


def write_config(path: Path, tz: str) -> None:
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {"command": "docker", "args": ["run", "-i", "-e", "TZ", "img"], "env": {"TZ": tz}},
                    "bad": {"command": "docker", "args": ["run", "--no-such-flag", "img"]},
                }
            }
        )
    )


def test_specs_are_found_by_hash_and_read_again_when_the_file_changed(tmp_path):
    path = tmp_path / "mcp.config.json"
    write_config(path, "UTC")
    specs = ServerSpecs(path, (8000, 9000))
    first = specs.lookup("time", specs.current().servers["time"].spec_hash)
    write_config(path, "Europe/Paris")
    assert specs.find("time") == first  # no re-read without a reason
    from common.config import load_config

    new_hash = load_config(path, port_range=(8000, 9000)).servers["time"].spec_hash
    assert new_hash != first.spec_hash
    assert specs.lookup("time", new_hash).spec_hash == new_hash  # read again


def test_spec_lookups_that_fail_say_why(tmp_path):
    path = tmp_path / "mcp.config.json"
    write_config(path, "UTC")
    specs = ServerSpecs(path, (8000, 9000))
    with pytest.raises(ServiceError) as exc:
        specs.lookup("time", "0" * 16)
    assert exc.value.code is ErrorCode.CONFLICT and "different files" in exc.value.message
    with pytest.raises(ServiceError) as exc:
        specs.lookup("nope", "x")
    assert exc.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(ServiceError) as exc:
        specs.lookup("bad", "x")
    assert exc.value.code is ErrorCode.INVALID_ARGUMENT
    path.write_text("{")
    with pytest.raises(ServiceError) as exc:
        specs.lookup("time", "x")
    assert exc.value.code is ErrorCode.UNAVAILABLE


# --- time stamps and addresses ---------------------------------------------------------


def test_docker_times_compare_with_event_times():
    assert events.time_ns("1970-01-01T00:00:01Z") == 1_000_000_000
    assert events.time_ns("2026-11-23T21:39:25.84909288Z") == 1795469965_849092880
    assert events.time_ns("2026-11-23T21:39:25.5Z") == 1795469965_500000000
    for odd in ("0001-01-01T00:00:00Z", "", None, "yesterday", "2026-11-23T21:39:25+01:00"):
        assert events.time_ns(odd) is None


def test_a_reverse_proxied_server_is_reached_the_most_local_way():
    from services.container_agent.docker_ops import proxy_address

    on_bridge = {"HostConfig": {"NetworkMode": "bridge"}, "NetworkSettings": {"IPAddress": "172.17.0.5", "Ports": {}}}
    assert proxy_address(on_bridge, 8080) == ("172.17.0.5", 8080)
    assert proxy_address({"HostConfig": {"NetworkMode": "host"}}, 8080) == ("127.0.0.1", 8080)
    published = {
        "HostConfig": {},
        "NetworkSettings": {
            "IPAddress": "172.17.0.5",
            "Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}, {"HostIp": "::", "HostPort": "49153"}]},
        },
    }
    assert proxy_address(published, 8080) == ("127.0.0.1", 49153)
    assert proxy_address(published, 9090) == ("172.17.0.5", 9090)
    user_net = {
        "HostConfig": {"NetworkMode": "mynet"},
        "NetworkSettings": {"IPAddress": "", "Networks": {"mynet": {"IPAddress": "10.1.0.2"}}},
    }
    assert proxy_address(user_net, 80) == ("10.1.0.2", 80)
    assert proxy_address({"HostConfig": {"NetworkMode": "none"}, "NetworkSettings": {}}, 80) is None


# --- the events stream reconnects -----------------------------------------------------


class FakeStream:
    """Stands in for the SDK's CancellableStream: yields events, then ends."""

    def __init__(self, items: list) -> None:
        self.items = list(items)
        self.closed = False

    def __iter__(self):
        return iter(self.items)

    def close(self) -> None:
        self.closed = True


def test_the_events_stream_reconnects_and_says_so():
    from services.container_agent.event_stream import DockerEventStream

    connects, changes, opened = [], [], []
    attempts = iter(
        [
            RuntimeError("engine down"),  # first try fails
            [docker_event("start"), "not a dict", {"Type": "x"}],  # connected: one event, then ends
            [docker_event("die", exitCode="1")],  # reconnected after the end
        ]
    )

    class FakeClient:
        def events(self, decode, filters):
            assert decode and filters == labels.event_filters("c")
            item = next(attempts, None)
            if item is None:
                done.wait(5)
                return FakeStream([])
            if isinstance(item, Exception):
                raise item
            opened.append(FakeStream(item))
            return opened[-1]

        def close(self) -> None:
            pass

    done = threading.Event()
    stream = DockerEventStream(FakeClient, labels.event_filters("c"), changes.append, connects.append)
    stream.start()
    deadline = time.monotonic() + 10
    while len(changes) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    stream.stop()
    assert connects[:2] == [True, False]
    assert [c.kind for c in changes] == [events.STARTED, events.EXITED]
    assert all(s.closed for s in opened)


# --- status() reuses inspect results until Docker says something changed ----------------


class _CountingOps:
    """Just what Lifecycle.status() needs of DockerOps, counting the inspects."""

    cluster = "c1"

    def __init__(self, n: int) -> None:
        from common.container_labels import Placement, labels_for

        self.containers = {}
        for i in range(n):
            cid = f"{i:064x}"
            labels = labels_for(Placement(f"s{i}", 9000 + i, "h"), self.cluster)
            self.containers[cid] = {
                "Id": cid,
                "State": {"Status": "running", "Running": True, "StartedAt": "2026-01-01T00:00:00Z"},
                "Config": {"Labels": labels, "Image": "img"},
                "Name": f"/mcp-s{i}",
            }
        self.inspects = 0

    def list_ours(self):
        return [
            {"Id": cid, "State": a["State"]["Status"], "Labels": a["Config"]["Labels"]}
            for cid, a in self.containers.items()
        ]

    def inspect(self, cid):
        self.inspects += 1
        return self.containers.get(cid)

    def inspect_server(self, sid):
        return None

    def stderr_lines(self, cid, n):
        return []


class _QuietServing:
    def state(self, sid):
        return "ready", "", ""

    def mcp_version(self, sid):
        return "2026-07-28"

    def stderr_tail(self, sid, n):
        return []

    def served_ids(self):
        return []


def test_status_inspects_each_container_once_until_an_event_or_a_state_change():
    from common.container_labels import Placement
    from services.container_agent.events import ContainerChange
    from services.container_agent.lifecycle import Lifecycle

    ops = _CountingOps(5)
    life = Lifecycle(
        ops, _QuietServing(), specs=None, port_range=(9000, 9100), emit=lambda *a: None, submit=lambda fn: None
    )
    assert len(life.status()) == 5 and ops.inspects == 5
    assert len(life.status()) == 5 and ops.inspects == 5  # nothing changed: no inspect

    first = next(iter(ops.containers))
    ops.containers[first]["State"]["Status"] = "exited"  # the listing shows a new state
    life.status()
    assert ops.inspects == 6

    life.on_change(
        ContainerChange("health", "s1", f"{1:064x}", Placement("s1", 9001, "h"), health="unhealthy")
    )  # an event about one container
    life.status()
    assert ops.inspects == 7

    del ops.containers[first]  # gone from the listing: forgotten
    life.status()
    assert first not in life._inspected


def test_what_status_keeps_of_an_inspect_gives_the_same_status_and_holds_no_env():
    from services.container_agent.status import status_fields

    for attrs in (
        inspect_attrs(),
        inspect_attrs(
            "exited", ExitCode=137, OOMKilled=True, FinishedAt="2026-01-01T00:01:00Z", Health={"Status": "unhealthy"}
        ),
    ):
        attrs["Config"]["Env"] = ["TOKEN=s3cr3t-value-1234567890"]
        attrs["State"].setdefault("Health", {"Status": "healthy", "Log": [{"Output": "x" * 10000}]})
        kept = status_fields(attrs)
        assert container_info("time", kept, bridge="ready") == container_info("time", attrs, bridge="ready")
        assert "s3cr3t" not in repr(kept) and "x" * 100 not in repr(kept)
        assert len(repr(kept)) < 1000
