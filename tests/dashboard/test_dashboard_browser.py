"""The dashboard in a real browser (headless Chromium + Selenium) under waitress.

Backed twice: by the real scheduler, container-agent and alb-agent with real
containers (the product), and by the stand-in scheduler process (fast, no Docker).
The flow: log in, see the servers, stop one and watch its state change without a
reload, start it again, open a server's page and see its stderr tail, look at the ALB
routing, log out. Screenshots of the overview and the routing page are saved under
artifacts/dashboard/.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass

import pytest

from tests.dashboard.browser import Browser
from tests.dashboard.processes import (
    PASSWORD,
    dashboard_settings,
    short_tmp_dir,
    start_dashboard,
    start_fake_scheduler,
    wait_until_answers,
)
from tests.dashboard.real_world import CANARY, STDERR_MARKER, real_world
from tests.harness.ports import free_port
from tests.harness.servers import docker_server


@dataclass
class Backend:
    name: str
    base_url: str
    stop_id: str
    detail_id: str
    stderr_marker: str
    crash_id: str
    timeout: float


@pytest.fixture
def fake_backend():
    directory = short_tmp_dir("dashb-")
    port = free_port()
    settings = dashboard_settings(directory, dashboard_port=port)
    procs = [start_fake_scheduler(directory, settings), start_dashboard(directory, settings)]
    wait_until_answers(procs[-1], port, 30)
    yield Backend(
        "fake", f"http://127.0.0.1:{port}/monitor", "beta", "alpha", "server ready on stdio (fake)", "gamma", 10
    )
    for proc in reversed(procs):
        proc.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def real_backend(docker_client, busybox_image):
    with real_world(docker_client, busybox_image) as world:
        dashboard = world.start_dashboard()
        try:
            yield Backend("real", world.base_url, world.quiet, world.talker, STDERR_MARKER, world.boom, 60)
        finally:
            dashboard.stop()


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


def badge_of(b: Browser, server_id: str) -> str:
    return b.text(f'tr[data-server="{server_id}"] .badge')


def run_flow(b: Browser, backend: Backend) -> list[str]:
    """The operator's walk through the dashboard; returns every page source seen."""
    from selenium.webdriver.common.by import By

    d = b.driver
    sources = []
    d.get(backend.base_url + "/")
    b.wait(lambda d: "/login" in d.current_url, 10, "the login page")
    d.find_element(By.ID, "username").send_keys("admin")
    d.find_element(By.ID, "password").send_keys(PASSWORD)
    b.click("#login")

    # The overview: every server, counts at the top.
    row = f'tr[data-server="{backend.stop_id}"]'
    b.wait(
        lambda d: badge_of(b, backend.stop_id) == "running",
        backend.timeout,
        f"{backend.stop_id} running on the overview",
    )
    b.wait(
        lambda d: badge_of(b, backend.crash_id) in ("crash looping", "error"),
        backend.timeout,
        f"{backend.crash_id} crash-looping",
    )
    assert int(b.text("#count-total")) == 3
    b.wait(lambda d: int(b.text("#count-running")) >= 2, backend.timeout, "two running")
    sources.append(d.page_source)
    b.screenshot(f"overview-{backend.name}.png")

    # Stop one and watch it change without a reload.
    d.execute_script("window.__sameDocument = 'yes';")
    b.click(f"{row} button.act-stop")
    b.wait(lambda d: backend.stop_id in b.text("#feedback"), 10, "feedback on the stop")
    b.wait(
        lambda d: badge_of(b, backend.stop_id).startswith("stopped"),
        backend.timeout,
        f"{backend.stop_id} to show as stopped",
    )
    assert d.execute_script("return window.__sameDocument;") == "yes", "the page was reloaded"

    b.click(f"{row} button.act-start")
    b.wait(lambda d: badge_of(b, backend.stop_id) == "running", backend.timeout, f"{backend.stop_id} running again")
    assert d.execute_script("return window.__sameDocument;") == "yes", "the page was reloaded"
    sources.append(d.page_source)

    # A server's page: its stderr tail.
    b.click(f'tr[data-server="{backend.detail_id}"] td a')
    b.wait(
        lambda d: backend.stderr_marker in b.text("#stderr-tail"), backend.timeout, "the stderr tail on the server page"
    )
    assert backend.detail_id in b.text("#server-title")
    # Its traffic: the charts are drawn whether it had calls or not.
    b.wait(lambda d: d.find_element(By.ID, "chart-calls"), backend.timeout, "the traffic chart on the server page")
    sources.append(d.page_source)
    b.screenshot(f"server-{backend.name}.png")

    # The routing page.
    b.click('header nav a[href$="/routing"]')
    b.wait(
        lambda d: f"/mcp/{backend.detail_id}/*" in b.text("#rules"), backend.timeout, "the rules on the routing page"
    )
    assert "Routing is simulated" in b.text("#simulated-banner")
    sources.append(d.page_source)
    b.screenshot(f"routing-{backend.name}.png")

    b.click('header nav a[href$="/litellm"]')
    b.wait(lambda d: "mcp_servers:" in b.text("#litellm-yaml"), 10, "the LiteLLM snippet")
    sources.append(d.page_source)

    # Log out: back at the login page, and the pages need a login again.
    b.click("#logout")
    b.wait(lambda d: "/login" in d.current_url and d.find_element(By.ID, "password"), 10, "the login page after logout")
    d.get(backend.base_url + "/routing")
    b.wait(lambda d: "/login" in d.current_url, 10, "the login page again")
    return sources


def test_browser_flow_with_the_stand_in_scheduler(browser, fake_backend):
    run_flow(browser, fake_backend)


def test_the_traffic_of_real_calls_in_the_browser(browser, docker_client, time_server_image):
    """Real calls through the real bridge (official SDK client, both eras, a tool that
    fails), then the overview's numbers and sparkline and the server page's charts,
    tool list, input schema and recent calls in Chromium. Screenshots are kept."""
    from selenium.webdriver.common.by import By

    from tests.scheduler.support import Orchestrator

    orch = Orchestrator(docker_client, settings={"dashboard": {"password": PASSWORD}})
    try:
        sid = f"{orch.cluster}-time"
        orch.write_config({sid: docker_server(time_server_image)})
        orch.start_all()
        servers = orch.wait_converged({sid}, timeout=120)
        url = f"http://127.0.0.1:{servers[sid]['host_port']}/mcp/{sid}/mcp"
        asyncio.run(asyncio.wait_for(_some_calls(url), 60))
        dashboard = orch.start("dashboard")
        wait_until_answers(dashboard, orch.dashboard_port, 30)
        base = f"http://127.0.0.1:{orch.dashboard_port}/monitor"

        b, d = browser, browser.driver
        d.get(base + "/login")
        d.find_element(By.ID, "username").send_keys("admin")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        b.click("#login")
        row = f'tr[data-server="{sid}"]'
        # Every MCP request counts (the clients' initialize and lists too); two failed.
        b.wait(lambda d: b.text(f"{row} .traffic-errors").endswith("%"), 30, "the error rate on the overview")
        label = d.find_element(By.CSS_SELECTOR, f"{row} svg.spark").get_attribute("aria-label")
        calls = int(re.match(r"(\d+) calls, 2 failed, in the last 10 min$", label).group(1))
        assert calls >= 10 and float(b.text(f"{row} .traffic-rate")) == round(calls / 5, 2)
        b.screenshot("traffic-overview-real.png")

        d.get(f"{base}/servers/{sid}")
        b.wait(lambda d: "convert_time" in b.text("#tools"), 30, "the tool list on the server page")
        assert "get_current_time" in b.text("#tools")
        assert int(b.text("#traffic-calls")) == calls
        for chart in ("chart-calls", "chart-p95"):
            assert d.find_element(By.ID, chart).is_displayed()
        assert len(d.find_elements(By.CSS_SELECTOR, "#chart-calls rect.err")) >= 1
        recent = b.text("#recent-calls")
        assert recent.count("tools/call") == 10 and recent.count("tool_error") == 2 and "2026-07-28" in recent
        # The input schema on demand; opened, it stays open across the live updates.
        b.click('tr[data-tool="convert_time"] details summary')
        b.wait(lambda d: "target_timezone" in b.text('tr[data-tool="convert_time"] pre.schema'), 10, "the schema")
        d.execute_script("document.getElementById('tools').dataset.seen = '1';")
        b.wait(
            lambda d: d.execute_script("return document.getElementById('tools').dataset.seen === undefined;"),
            10,
            "a live update of the page",
        )
        assert d.find_element(By.CSS_SELECTOR, 'tr[data-tool="convert_time"] details').get_attribute("open")
        b.screenshot("traffic-server-real.png")
    finally:
        orch.close()


async def _some_calls(url: str) -> None:
    """Ten tools/call: eight good ones over both eras, two that fail."""
    from mcp.client.client import Client

    async with Client(url, mode="legacy") as client:
        for _ in range(4):
            await client.call_tool("get_current_time", {"timezone": "UTC"})
        await client.call_tool("get_current_time", {"timezone": "Nowhere/Atlantis"})
    async with Client(url, mode="2026-07-28") as client:
        for _ in range(3):
            await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})
        await client.call_tool(
            "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
        )
        await client.call_tool("convert_time", {"source_timezone": "UTC", "time": "99:99", "target_timezone": "UTC"})


@pytest.mark.docker
@pytest.mark.slow
def test_browser_flow_with_the_real_orchestrator(browser, real_backend):
    sources = run_flow(browser, real_backend)
    for source in sources:
        assert CANARY not in source  # the env value of the talker never reaches a page
