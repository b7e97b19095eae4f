"""The launcher's supervision with small stand-in children (real processes, fast)."""

from __future__ import annotations

import io
import os

from common.settings import Settings
from services.cli.launcher import ChildSpec, Launcher, child_specs, module_for
from tests.harness.waiting import wait_for


def make_module(tmp_path, name, body):
    (tmp_path / f"{name}.py").write_text(body)


def launcher(tmp_path, specs):
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return Launcher(specs, env=env, out=io.StringIO())


def test_a_dying_child_is_reported_and_started_again_and_a_usage_error_is_not(tmp_path):
    make_module(tmp_path, "crasher", "import sys\nsys.exit(1)\n")
    make_module(tmp_path, "refuser", "import sys\nsys.exit(2)\n")
    make_module(tmp_path, "sleeper", "import time\ntime.sleep(60)\n")
    run = launcher(
        tmp_path, [ChildSpec("crasher", "crasher"), ChildSpec("refuser", "refuser"), ChildSpec("sleeper", "sleeper")]
    )
    run.start_all()

    def settled():
        run.check_children()
        return run.out.getvalue().count("started crasher") >= 2 and run.given_up() == ["refuser"]

    try:
        wait_for(settled, 20, "a crasher started twice and a refuser given up", explain=run.out.getvalue)
        out = run.out.getvalue()
        assert "crasher (pid" in out and "exited with status 1" in out
        assert "refuser" in out and "refused its settings" in out
    finally:
        killed = run.stop_all()
    assert killed == []
    assert "stopping sleeper" in run.out.getvalue()


def test_child_specs_pass_the_files_and_labels(tmp_path):
    config, settings_path = tmp_path / "c.json", tmp_path / "s.conf"
    specs = {
        s.name: s for s in child_specs(Settings(), config, settings_path, dashboard=False, container_labels=["k=v"])
    }
    assert list(specs) == ["container-agent", "alb-agent", "scheduler"]
    assert specs["container-agent"].args == (
        "--settings",
        str(settings_path),
        "--config",
        str(config),
        "--label",
        "k=v",
    )
    assert specs["alb-agent"].args == ("--settings", str(settings_path))
    assert specs["scheduler"].module == "services.scheduler"
    if module_for("dashboard") == "services.dashboard":
        with_dashboard = [s.name for s in child_specs(Settings(), config, None, dashboard=True)]
        assert with_dashboard[-1] == "dashboard"
