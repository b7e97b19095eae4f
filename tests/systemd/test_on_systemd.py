"""The product installed by `make install` and run by a real systemd (PID 1 of a container),
managing MCP containers on the host's Docker engine.

The tests run in order on one booted container: install, upgrade in place, start,
an MCP call through the bridge, the dashboard, a killed agent, an adopted restart, a
watchdog restart, reload, stop, the journal, uninstall. Every MCP container belongs to a
cluster name of this run only (so the agent inside never touches anything else on the
engine) and carries the test label; the containers and the systemd container are
removed at the end.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import docker.errors
import pytest

from common import container_labels as labels
from tests.conftest import ROOT, ensure_image
from tests.harness.labels import TEST_LABEL
from tests.harness.waiting import wait_for
from tests.systemd.box import SOURCE, WHEELS, Box, message_of
from tests.systemd.conftest import SYSTEMD_IMAGE, TARGET, UNITS

pytestmark = [pytest.mark.systemd, pytest.mark.docker, pytest.mark.slow]

RUN = uuid.uuid4().hex[:8]
CLUSTER = f"sdtest-{RUN}"
SERVER = f"time-{RUN}"  # container names (mcp-{id}) are global on the engine
CONF = "/etc/mcp-orchestrator"
UNIT_PATH = "/usr/local/lib/systemd/system"
# Secret values: in an env block, in the environment file, and the dashboard password.
BLOCK_SECRET = f"block-canary-{uuid.uuid4().hex}"
FILE_SECRET = f"file-canary-{uuid.uuid4().hex}"
PASSWORD = f"pw-canary-{uuid.uuid4().hex}"
CANARIES = (BLOCK_SECRET, FILE_SECRET, PASSWORD)
DASHBOARD_PORT = 5000

SCHEDULER = "mcp-orchestrator-scheduler.service"
CONTAINER_AGENT = "mcp-orchestrator-container-agent.service"
ALB_AGENT = "mcp-orchestrator-alb-agent.service"
DASHBOARD = "mcp-orchestrator-dashboard.service"
SOCKETS = {
    "scheduler-control.sock",
    "scheduler-state.sock",
    "containers.sock",
    "container-events.sock",
    "routes.sock",
    "route-events.sock",
}

MCP_CLIENT = (Path(__file__).parent / "mcp_client.py").read_text()
MCP_LOOP = (Path(__file__).parent / "mcp_loop.py").read_text()
DASHBOARD_CLIENT = """
import json, sys, urllib.request
base, password = sys.argv[1], sys.argv[2]
req = urllib.request.Request(base + "/api/login", method="POST",
    data=json.dumps({"username": "admin", "password": password}).encode(),
    headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    cookie = "; ".join(c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or [])
    assert json.load(r).get("ok") is True
req = urllib.request.Request(base + "/api/overview", headers={"Cookie": cookie})
with urllib.request.urlopen(req, timeout=10) as r:
    print(json.dumps({"status": r.status, "body": json.load(r)}))
"""


def settings_conf() -> str:
    return f"""\
[aws]
cluster_name = {CLUSTER}
[service]
reconciliation_interval_seconds = 10
port_range_start = 8100
port_range_end = 8199
[dashboard]
username = admin
port = {DASHBOARD_PORT}
[logging]
level = INFO
"""


def mcp_config(time_image: str) -> str:
    return json.dumps(
        {
            "mcpServers": {
                SERVER: {
                    "command": "docker",
                    "args": ["run", "-i", "--rm", "-e", "TZ", "-e", "BLOCK_SECRET", "-e", "FILE_SECRET", time_image],
                    "env": {"TZ": "UTC", "BLOCK_SECRET": BLOCK_SECRET},
                }
            }
        },
        indent=2,
    )


ENVIRONMENT = f"""\
# written by tests/systemd
FILE_SECRET={FILE_SECRET}
MCP_ORCHESTRATOR_DASHBOARD_PASSWORD={PASSWORD}
"""

# The container-agent marks its containers with the test label (its --label option), in a
# drop-in as an operator would.
LABEL_DROPIN = f"""\
[Service]
ExecStart=
ExecStart=/opt/mcp-orchestrator/venv/bin/python -m services.container_agent \\
    --settings {CONF}/settings.conf --config {CONF}/mcp.config.json \\
    --label {TEST_LABEL}={RUN}
"""


def config_files(time_image: str) -> dict[str, tuple[str, str, str]]:
    """path -> (text, mode, owner) of the configuration of this run."""
    return {
        f"{CONF}/settings.conf": (settings_conf(), "0640", "root:mcp-orchestrator"),
        f"{CONF}/mcp.config.json": (mcp_config(time_image), "0640", "root:mcp-orchestrator"),
        f"{CONF}/environment": (ENVIRONMENT, "0600", "root:root"),
    }


# --- fixtures ---------------------------------------------------------------------------


def our_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": [f"{labels.CLUSTER}={CLUSTER}"]})


@pytest.fixture(scope="module")
def box(docker_client, wheelhouse, time_server_image):
    ensure_image(docker_client, SYSTEMD_IMAGE)
    name = f"mcp-systemd-{RUN}"
    box = None
    try:
        box = Box.boot(name, SYSTEMD_IMAGE, project=ROOT, wheels=wheelhouse, labels={TEST_LABEL: RUN})
        yield box
    finally:
        if box is not None:
            box.sh("systemctl stop mcp-orchestrator.target", check=False, timeout=60)
        for container in our_containers(docker_client):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        Box(name).remove()


def journal_tail(box: Box, lines: int = 60) -> str:
    return box.sh(f"journalctl --no-pager -n {lines} -u 'mcp-orchestrator*'", check=False).stdout


def wait(box: Box, what: str, probe, timeout: float):
    return wait_for(probe, timeout, what, interval=0.25, explain=lambda: f"--- journal\n{journal_tail(box)}")


def pids(box: Box) -> dict[str, int]:
    return {unit: box.main_pid(unit) for unit in UNITS}


def running_container(client):
    """Our one MCP container once it runs, else None."""
    found = [c for c in our_containers(client) if c.status == "running"]
    return found[0] if len(found) == 1 else None


def mcp_call(box: Box, port: int):
    """The tools/call result through the bridge, or None when the call failed."""
    url = f"http://127.0.0.1:{port}/mcp/{SERVER}/mcp"
    result = box.python(MCP_CLIENT, url, "get_current_time", json.dumps({"timezone": "UTC"}))
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def wait_for_mcp(box: Box, client, timeout: float = 90):
    container = wait(box, "the MCP container to run", lambda: running_container(client), timeout)
    port = int(container.labels[labels.HOST_PORT])
    answer = wait(box, "an MCP call through the bridge", lambda: mcp_call(box, port), timeout)
    return container, answer


# --- the steps, in order ------------------------------------------------------------------


def test_make_install_creates_the_user_the_configuration_and_enabled_units(box):
    socket_gid = box.sh("stat -c %g /run/docker.sock").stdout.strip()
    # Docker's packages make the docker group; install.sh makes it when missing, with
    # the socket's GID when no group has it. When the image already uses that GID for
    # another group, the test makes docker share it, as Docker's packages would have.
    if box.sh(f"getent group {socket_gid}", check=False).returncode == 0:
        box.sh(f"getent group docker || groupadd --non-unique --gid {socket_gid} docker")
    out = box.run(
        ["make", "-C", SOURCE, "install"], env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS}, timeout=600
    ).stdout
    assert "Next steps" in out and f"installed {CONF}/settings.conf" in out

    assert box.sh("getent passwd mcp-orchestrator").returncode == 0
    # The user is not in the docker group: only the container-agent's unit adds it.
    assert "docker" not in box.sh("id -nG mcp-orchestrator").stdout.split()
    assert box.sh("getent group docker | cut -d: -f3").stdout.strip() == socket_gid
    modes = box.sh(
        f"stat -c '%n %a %U:%G' {CONF} {CONF}/settings.conf {CONF}/mcp.config.json {CONF}/environment"
    ).stdout.split("\n")
    assert modes[:4] == [
        f"{CONF} 750 root:mcp-orchestrator",
        f"{CONF}/settings.conf 640 root:mcp-orchestrator",
        f"{CONF}/mcp.config.json 640 root:mcp-orchestrator",
        f"{CONF}/environment 600 root:root",
    ]
    assert box.sh("systemctl is-enabled mcp-orchestrator.target").stdout.strip() == "enabled"
    for unit in UNITS:
        assert box.sh(f"test -f {UNIT_PATH}/{unit}", check=False).returncode == 0, unit
    box.sh(
        "/opt/mcp-orchestrator/venv/bin/python -c 'import services.scheduler.main, "
        "services.container_agent.main, services.alb_agent.main, services.dashboard.main'"
    )
    assert (
        box.sh("readlink /usr/local/bin/mcp-orchestrator").stdout.strip()
        == "/opt/mcp-orchestrator/venv/bin/mcp-orchestrator"
    )


def test_systemd_analyze_verify_passes_on_the_installed_units(box):
    result = box.sh(f"systemd-analyze verify {UNIT_PATH}/mcp-orchestrator*", check=False)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_systemd_analyze_security_rates_every_service_ok(box):
    # The README reports these numbers (0 = locked down, 10 = fully exposed).
    for unit in UNITS:
        out = box.sh(f"systemd-analyze security --no-pager {unit}").stdout
        line = out.strip().splitlines()[-1]
        score = float(line.split(":")[1].split()[0])
        print(f"{unit}: {score}")
        assert score <= 2.0, line


def test_starting_the_target_starts_all_four(box, time_server_image):
    # This run's configuration (its own cluster name, one MCP server, secrets) and the
    # test label for the containers.
    for path, (text, mode, owner) in config_files(time_server_image).items():
        box.write(path, text, mode, owner)
    box.write(f"/etc/systemd/system/{CONTAINER_AGENT}.d/test-label.conf", LABEL_DROPIN)
    box.run(["systemctl", "daemon-reload"])
    box.run(["systemctl", "start", TARGET], timeout=180)
    for unit in UNITS:
        assert box.active_state(unit) == "active", f"{unit}\n{journal_tail(box)}"
        assert box.main_pid(unit) > 0
    assert box.active_state(TARGET) == "active"
    listing = box.sh("ls -A /run/mcp-orchestrator; stat -c %a:%U /run/mcp-orchestrator")
    names = set(listing.stdout.split()[:-1])
    assert SOCKETS <= names, listing.stdout
    assert listing.stdout.split()[-1] == "700:mcp-orchestrator"


def test_an_mcp_call_through_the_bridge_succeeds(box, docker_client):
    container, answer = wait_for_mcp(box, docker_client)
    assert answer["result"]["content"], answer
    assert container.labels.get(TEST_LABEL) == RUN
    # The values reached Docker: from the env block and from the environment file.
    env = container.attrs["Config"]["Env"]
    assert f"BLOCK_SECRET={BLOCK_SECRET}" in env and f"FILE_SECRET={FILE_SECRET}" in env


def test_the_dashboard_answers_with_the_password_from_the_environment_file(box):
    base = f"http://127.0.0.1:{DASHBOARD_PORT}/monitor"

    def overview():
        result = box.python(DASHBOARD_CLIENT, base, PASSWORD)
        return json.loads(result.stdout) if result.returncode == 0 else None

    answer = wait(box, "the dashboard to answer", overview, timeout=30)
    assert answer["status"] == 200
    assert SERVER in json.dumps(answer["body"])


def test_make_install_again_upgrades_in_place_keeps_the_configuration_and_restarts(
    box, docker_client, time_server_image
):
    before = pids(box)
    container = running_container(docker_client)
    assert container is not None
    out = box.run(
        ["make", "-C", SOURCE, "install"], env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS}, timeout=600
    ).stdout
    assert "upgraded /opt/mcp-orchestrator in place" in out
    for path, (text, _, _) in config_files(time_server_image).items():
        assert f"kept {path}" in out
        assert box.sh(f"cat {path}").stdout == text
    # The running services now run the new code; the MCP container is adopted, not recreated.
    after = pids(box)
    for unit in UNITS:
        assert box.active_state(unit) == "active", unit
        assert after[unit] != before[unit], unit
    again, answer = wait_for_mcp(box, docker_client, timeout=30)
    assert again.id == container.id and answer["result"]["content"]


def test_a_killed_alb_agent_is_restarted_alone(box, docker_client):
    before = pids(box)
    containers = sorted(c.id for c in our_containers(docker_client))
    restarts = int(box.show(ALB_AGENT, "NRestarts")["NRestarts"])
    box.run(["kill", "-9", str(before[ALB_AGENT])])
    wait(
        box,
        "systemd to restart the alb-agent",
        lambda: box.active_state(ALB_AGENT) == "active" and box.main_pid(ALB_AGENT) not in (0, before[ALB_AGENT]),
        timeout=60,
    )
    after = pids(box)
    assert {u: p for u, p in after.items() if u != ALB_AGENT} == {u: p for u, p in before.items() if u != ALB_AGENT}
    assert int(box.show(ALB_AGENT, "NRestarts")["NRestarts"]) == restarts + 1
    assert sorted(c.id for c in our_containers(docker_client)) == containers


def test_a_restarted_container_agent_adopts_the_running_containers(box, docker_client):
    container = running_container(docker_client)
    assert container is not None
    started_at = container.attrs["State"]["StartedAt"]
    old_pid = box.main_pid(CONTAINER_AGENT)
    box.run(["systemctl", "restart", CONTAINER_AGENT], timeout=120)
    assert box.main_pid(CONTAINER_AGENT) not in (0, old_pid)
    again, answer = wait_for_mcp(box, docker_client, timeout=30)
    assert answer["result"]["content"]
    again.reload()
    assert again.id == container.id and again.attrs["State"]["StartedAt"] == started_at
    assert [c.id for c in our_containers(docker_client)] == [container.id]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_a_killed_container_agent_refuses_no_connection_and_fails_only_calls_in_flight(box, docker_client, mode):
    """kill -9 of the container-agent under a client calling every 50 ms: systemd keeps
    the bridge's listening socket (the fd store) while it restarts the unit, so calls
    made meanwhile wait in the backlog and are served by the new process."""
    container, _ = wait_for_mcp(box, docker_client, timeout=60)
    port = int(container.labels[labels.HOST_PORT])
    stop, progress = f"/tmp/loop-stop-{mode}", f"/tmp/loop-progress-{mode}"
    box.sh(f"rm -f {stop} {progress}")
    url = f"http://127.0.0.1:{port}/mcp/{SERVER}/mcp"
    args = [url, "get_current_time", json.dumps({"timezone": "UTC"}), mode, stop, progress]
    loop = subprocess.Popen(
        ["docker", "exec", "-i", box.name, "python3", "-", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    loop.stdin.write(MCP_LOOP)
    loop.stdin.close()

    def succeeded() -> int:
        done = box.sh(f"cat {progress} 2>/dev/null || echo 0", check=False)
        return int(done.stdout.strip() or 0)

    try:
        wait(box, "the loop's first calls", lambda: succeeded() >= 5, timeout=30)
        old = box.main_pid(CONTAINER_AGENT)
        # The moment of the kill, taken where it happens (docker exec itself takes a while).
        killed = float(box.python(f"import os, time; os.kill({old}, 9); print(time.time())").stdout)
        wait(
            box,
            "systemd to restart the container-agent",
            lambda: box.active_state(CONTAINER_AGENT) == "active" and box.main_pid(CONTAINER_AGENT) not in (0, old),
            timeout=60,
        )
        before = succeeded()
        wait(box, "calls to succeed again", lambda: succeeded() >= before + 5, timeout=60)
    finally:
        box.sh(f"touch {stop}", check=False)
        loop.wait(timeout=60)
    out = loop.stdout.read()
    assert loop.returncode == 0 and out, loop.stderr.read()[-2000:]
    calls = json.loads(out)
    failed = [c for c in calls if not c[2] and c[1] >= killed]
    refused = [c for c in failed if "refused" in c[3].lower()]
    in_flight = sum(1 for c in calls if c[0] <= killed <= c[1])
    back = min(c[1] for c in calls if c[2] and c[0] > killed)
    print(
        f"\nsystemd, {mode}: {len(calls)} calls, {in_flight} in flight at the kill -9, {len(failed)} failed "
        f"({len(refused)} connection refusals), served again after {back - killed:.2f} s"
    )
    assert not refused, refused
    assert len(failed) <= in_flight, failed


def test_a_process_that_stops_answering_its_watchdog_is_restarted(box):
    before = pids(box)
    watchdog = box.show(SCHEDULER, "WatchdogUSec")["WatchdogUSec"]
    assert watchdog not in ("", "0", "infinity")
    box.run(["kill", "-STOP", str(before[SCHEDULER])])
    wait(
        box,
        f"systemd's watchdog ({watchdog}) to restart the stopped scheduler",
        lambda: box.active_state(SCHEDULER) == "active" and box.main_pid(SCHEDULER) not in (0, before[SCHEDULER]),
        timeout=120,
    )
    messages = [message_of(e) for e in box.journal("-u", SCHEDULER, "_PID=1")]
    assert any("Watchdog timeout" in m for m in messages), messages[-20:]
    after = pids(box)
    assert {u: p for u, p in after.items() if u != SCHEDULER} == {u: p for u, p in before.items() if u != SCHEDULER}


def test_reload_sends_sighup_to_the_scheduler_which_reads_its_files_again(box):
    pid = box.main_pid(SCHEDULER)
    cursor = box.sh("journalctl -n 0 --show-cursor --no-pager | tail -n 1").stdout
    cursor = cursor.split("cursor:", 1)[1].strip()
    box.run(["systemctl", "reload", SCHEDULER])
    wait(
        box,
        "the scheduler to log the reload",
        lambda: any("SIGHUP" in message_of(e) for e in box.journal("-u", SCHEDULER, f"--after-cursor={cursor}")),
        timeout=30,
    )
    assert box.main_pid(SCHEDULER) == pid and box.active_state(SCHEDULER) == "active"


def test_stopping_the_target_stops_all_four_and_leaves_the_containers_running(box, docker_client):
    container = running_container(docker_client)
    assert container is not None
    box.run(["systemctl", "stop", TARGET], timeout=120)
    # The target is ordered after its services (so that `start` returns once all four
    # are ready): on stop it goes down first and the services follow, each within its
    # TimeoutStopSec.
    wait(
        box,
        "all four services to stop",
        lambda: all(box.active_state(unit) == "inactive" for unit in UNITS),
        timeout=60,
    )
    # The decision: the MCP containers belong to Docker and keep running (and serving
    # nothing: the bridges were in the container-agent) ...
    container.reload()
    assert container.status == "running"
    # ... and the next start adopts them.
    box.run(["systemctl", "start", TARGET], timeout=180)
    again, answer = wait_for_mcp(box, docker_client, timeout=60)
    assert again.id == container.id and answer["result"]["content"]


def test_the_journal_has_each_units_lines_and_no_secret(box):
    for unit in UNITS:
        own = [e for e in box.journal("-u", unit) if e.get("SYSLOG_IDENTIFIER") == unit.removesuffix(".service")]
        assert own, f"no log line from the process of {unit}"
    text = box.journal_text()
    for canary in CANARIES:
        assert canary not in text
    # Nor in any file we (or systemd) wrote, configuration aside.
    found = box.sh("grep -rlsF --devices=skip -e " + " -e ".join(CANARIES) + " /opt /run /var /tmp /root", check=False)
    assert found.stdout.strip() == "", found.stdout


def test_unusable_settings_fail_the_unit_at_once_instead_of_restarting_it(box):
    dropin = f"/etc/systemd/system/{DASHBOARD}.d/test-bad-setting.conf"
    box.write(dropin, "[Service]\nEnvironment=MCP_ORCHESTRATOR_DASHBOARD_COLOUR=blue\n")
    box.run(["systemctl", "daemon-reload"])
    assert box.run(["systemctl", "restart", DASHBOARD], check=False).returncode != 0
    state = box.show(DASHBOARD, "ActiveState", "ExecMainStatus", "NRestarts")
    assert state == {"ActiveState": "failed", "ExecMainStatus": "2", "NRestarts": "0"}
    messages = [message_of(e) for e in box.journal("-u", DASHBOARD, "-n", "20")]
    assert any("MCP_ORCHESTRATOR_DASHBOARD_COLOUR" in m for m in messages), messages
    box.run(["rm", dropin])
    box.run(["systemctl", "daemon-reload"])
    box.run(["systemctl", "restart", DASHBOARD], timeout=120)
    assert box.active_state(DASHBOARD) == "active"


def test_make_uninstall_removes_units_and_program_and_keeps_configuration(box, docker_client):
    container = running_container(docker_client)
    out = box.run(["make", "-C", SOURCE, "uninstall"], timeout=120).stdout
    assert "Kept" in out
    assert box.sh("ls /opt/mcp-orchestrator", check=False).returncode != 0
    listed = box.sh("systemctl list-unit-files 'mcp-orchestrator*' --no-legend", check=False).stdout
    assert "mcp-orchestrator" not in listed
    for unit in UNITS:
        assert box.active_state(unit) == "inactive"
    assert box.sh(f"cat {CONF}/environment").stdout == ENVIRONMENT
    assert box.sh(f"test -f {CONF}/settings.conf && test -f {CONF}/mcp.config.json", check=False).returncode == 0
    assert box.sh("test -e /usr/local/bin/mcp-orchestrator", check=False).returncode != 0
    if container is not None:
        container.reload()
        assert container.status == "running"
