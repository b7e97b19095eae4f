"""`mcp-orchestrator validate`, run as the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-validate-9b2f"


def run_validate(*args, cwd=None, env_extra=None):
    exe = shutil.which("mcp-orchestrator", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "services.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ORCHESTRATOR_")}
    env.update(env_extra or {})
    return subprocess.run(
        [*cmd, "validate", *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_repository_files_are_valid():
    result = run_validate("--config", "mcp.config.json", "--settings", "settings.conf")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "result:   valid" in result.stdout


def test_problems_are_listed_and_exit_1(tmp_path):
    (tmp_path / "mcp.config.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "good": {"command": "docker", "args": ["run", "-i", "mcp/time"]},
                    "bad": {"command": "docker", "args": ["run", "-i", "--frobnicate", "mcp/time"]},
                    "node": {"command": "npx", "args": ["-y", "x"]},
                }
            }
        )
    )
    (tmp_path / "settings.conf").write_text("[service]\nport_range_end = 7000\n")
    result = run_validate("--config", "mcp.config.json", "--settings", "settings.conf", cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "port range is empty" in out
    assert "server 'bad': --frobnicate:" in out
    assert "notice  server 'node': skipped: command 'npx' is not docker" in out
    assert "result:   invalid" in out


def test_json_prints_specs_with_env_values_masked(tmp_path):
    (tmp_path / "mcp.config.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "s": {
                        "command": "docker",
                        "args": ["run", "-i", "-e", "TOKEN", "-e", "FROM_OS", "mcp/time"],
                        "env": {"TOKEN": CANARY},
                    },
                }
            }
        )
    )
    result = run_validate("--json", cwd=tmp_path, env_extra={"FROM_OS": CANARY + "-os"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert CANARY not in result.stdout + result.stderr
    data = json.loads(result.stdout)
    spec = data["config"]["servers"]["s"]["spec"]
    assert spec["image"] == "mcp/time"
    assert "TOKEN" in json.dumps(spec) and "FROM_OS" in json.dumps(spec)
    assert data["settings"]["values"]["dashboard"]["password"] == "***"


def test_defaults_apply_without_settings_file(tmp_path):
    (tmp_path / "mcp.config.json").write_text('{"mcpServers": {}}')
    result = run_validate(cwd=tmp_path)
    assert result.returncode == 0
    assert "built-in defaults" in result.stdout


def test_unreadable_config_exits_1(tmp_path):
    (tmp_path / "mcp.config.json").write_text("{not json")
    result = run_validate(cwd=tmp_path)
    assert result.returncode == 1 and "not valid JSON at line 1" in result.stdout


@pytest.mark.parametrize("argv", [["validate", "--bogus"], ["nonsense"]])
def test_usage_errors_exit_2(argv):
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
