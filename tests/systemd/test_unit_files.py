"""The unit files as files: systemd-analyze verify, and the properties the product
relies on (one target, readiness, watchdog, restarts, the shared runtime directory)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.systemd.conftest import SERVICES, TARGET, UNIT_DIR, UNITS

pytestmark = pytest.mark.systemd

# Keys every service sets to the same value: the four share one user and one socket dir.
SHARED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "User": "mcp-orchestrator",
    "Group": "mcp-orchestrator",
    "RuntimeDirectory": "mcp-orchestrator",
    "RuntimeDirectoryMode": "0700",
    "RuntimeDirectoryPreserve": "yes",
    "EnvironmentFile": "-/etc/mcp-orchestrator/environment",
    "Restart": "on-failure",
    "UMask": "0077",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "LimitCORE": "0",
}


def read_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat); continuation lines joined."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    logical = ""
    for raw in (UNIT_DIR / name).read_text().splitlines():
        if raw.endswith("\\"):
            logical += raw[:-1] + " "
            continue
        line, logical = (logical + raw).strip(), ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(" ".join(value.split()))
    return sections


def one(unit: dict, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected one value, found {values}"
    return values[0]


def test_systemd_analyze_verify_passes_on_every_unit(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # A root with what the units refer to: the system's own units (sysinit.target, ...),
    # the installed interpreter and /bin/kill. verify warns about unknown keys without
    # failing, so any output at all is a failure here.
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = root / "usr/local/lib/systemd/system"
    units.mkdir(parents=True)
    for name in (TARGET, *UNITS):
        shutil.copy(UNIT_DIR / name, units / name)
    python = root / "opt/mcp-orchestrator/venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    (root / "bin").mkdir()
    shutil.copy("/bin/kill" if Path("/bin/kill").exists() else "/bin/true", root / "bin/kill")
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", *[str(units / n) for n in (TARGET, *UNITS)]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_the_target_pulls_in_all_four_and_is_enabled_for_boot():
    target = read_unit(TARGET)
    wanted = " ".join(target["Unit"]["Wants"]).split()
    assert sorted(wanted) == sorted(UNITS)
    assert sorted(" ".join(target["Unit"]["After"]).split()) == sorted(UNITS)
    assert one(target, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_part_of_the_target_and_shares_the_common_settings(name):
    unit = read_unit(f"mcp-orchestrator-{name}.service")
    assert one(unit, "Unit", "PartOf") == TARGET
    for key, value in SHARED.items():
        assert one(unit, "Service", key) == value, key
    # Bounded, short, and a crash loop ends.
    for key in ("WatchdogSec", "RestartSec", "TimeoutStopSec", "TimeoutStartSec"):
        assert one(unit, "Service", key).endswith("s"), key
    assert int(one(unit, "Unit", "StartLimitBurst")) > 1
    assert one(unit, "Unit", "StartLimitIntervalSec")
    assert one(unit, "Service", "SyslogIdentifier") == f"mcp-orchestrator-{name}"
    exec_start = one(unit, "Service", "ExecStart").split()
    module = name.replace("-", "_")
    assert exec_start[:3] == ["/opt/mcp-orchestrator/venv/bin/python", "-m", f"services.{module}"]
    assert "--settings" in exec_start
    assert (ROOT / "services" / module / "__main__.py").is_file(), (
        f"python -m services.{module} needs services/{module}/__main__.py"
    )


def test_only_the_container_agent_reaches_docker():
    for name in SERVICES:
        unit = read_unit(f"mcp-orchestrator-{name}.service")
        groups = unit["Service"].get("SupplementaryGroups", [])
        if name == "container-agent":
            assert groups == ["docker"]
            assert "docker.service" in " ".join(unit["Unit"]["After"]).split()
        else:
            assert groups == [], name
            # The user namespace would hide the docker group: only where it is not needed.
            assert one(unit, "Service", "PrivateUsers") == "yes"


def test_ordering_where_it_matters():
    alb = read_unit("mcp-orchestrator-alb-agent.service")
    assert "network-online.target" in " ".join(alb["Unit"]["After"]).split()
    assert "network-online.target" in " ".join(alb["Unit"]["Wants"]).split()
    scheduler = read_unit("mcp-orchestrator-scheduler.service")
    assert one(scheduler, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_the_sysusers_snippet_declares_the_user():
    lines = [
        line.split()
        for line in (UNIT_DIR / "mcp-orchestrator.sysusers.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines and lines[0][:2] == ["u", "mcp-orchestrator"]
