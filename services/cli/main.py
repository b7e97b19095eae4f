"""`mcp-orchestrator`: the command line for operators.

    mcp-orchestrator [run] [--one-shot] [--no-dashboard] [--config PATH] [--settings PATH]
    mcp-orchestrator validate [--config PATH] [--settings PATH] [--json]
    mcp-orchestrator status [--json] [--settings PATH]
    mcp-orchestrator plan [--json] [--settings PATH]
    mcp-orchestrator litellm-config [--config PATH] [--settings PATH]

Without a command it runs the orchestrator (the original flags work as they did).
Exit status: 0 on success; 1 when something is invalid, did not converge, or the
scheduler does not answer; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from common.config import McpConfig, load_config_for
from common.process import add_file_options, resolve_paths
from common.protocol import to_plain
from common.settings import Settings, SettingsError, default_runtime_dir, load_settings

SERVICE_USER = "mcp-orchestrator"  # the user the installed units run as (scripts/install.sh)


def load_all(config_path: Path, settings_path: Optional[Path]) -> tuple[Settings, list[str], McpConfig]:
    """Settings (defaults when invalid), settings problems, and the checked config."""
    problems: list[str] = []
    try:
        settings = load_settings(settings_path)
    except SettingsError as exc:
        problems = exc.problems
        settings = Settings()  # still check the servers against the defaults
    return settings, problems, load_config_for(config_path, settings)


# --- validate ----------------------------------------------------------------------

LABEL = {"error": "error  ", "warning": "warning", "info": "notice "}


def cmd_validate(args: argparse.Namespace) -> int:
    config_path, settings_path = resolve_paths(args)
    settings, settings_problems, config = load_all(config_path, settings_path)
    failed = bool(settings_problems) or not config.ok

    if args.json:
        out = {
            "ok": not failed,
            "settings": {
                "source": str(settings_path) if settings_path else None,
                "problems": settings_problems,
                "values": settings.public_dict(),
            },
            "config": config.public_dict(),
        }
        _print_json(out)
        return 1 if failed else 0

    where = settings_path if settings_path else "built-in defaults (no settings.conf)"
    print(f"settings: {where}: " + ("OK" if not settings_problems else f"{len(settings_problems)} problem(s)"))
    for problem in settings_problems:
        print(f"  error   {problem}")
    enabled = len(config.enabled)
    disabled = len(config.servers) - enabled
    summary = f"{enabled} enabled, {disabled} disabled, {len(config.invalid)} invalid, {len(config.skipped)} skipped"
    print(f"config:   {config.source}: " + (summary if config.readable else "unusable"))
    hidden = 0
    for issue in config.issues:
        # Policy notes on single flags (--rm, -d) are the same for every server: verbose only.
        if issue.severity == "info" and issue.flag and not args.verbose:
            hidden += 1
            continue
        print(f"  {LABEL.get(issue.severity, issue.severity)} {issue}")
    if hidden:
        print(f"  ({hidden} notice(s) about how flags are applied: see --verbose)")
    if config.readable and settings.routing_simulated:
        print(
            "routing:  no ALB configured ([aws] alb_arn/listener_arn empty): routes go to a "
            "local AWS stand-in (simulated)"
        )
    print("result:   " + ("invalid" if failed else "valid"))
    return 1 if failed else 0


# --- settings for the commands that talk to a running scheduler ------------------------


def settings_or_exit(args: argparse.Namespace) -> tuple[Settings, Path, Optional[Path]]:
    config_path, settings_path = resolve_paths(args)
    try:
        return load_settings(settings_path), config_path, settings_path
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"mcp-orchestrator: {problem}", file=sys.stderr)
        raise SystemExit(2)


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- status / plan -----------------------------------------------------------------------


def _ask_scheduler(args: argparse.Namespace, ask) -> Optional[dict]:
    """`ask(client)` over the scheduler's control socket, as plain data; None (and a
    message) when the scheduler does not answer."""
    from services.cli.control import ControlClient, SchedulerUnavailable

    settings, _, _ = settings_or_exit(args)
    with ControlClient(settings) as client:
        try:
            return to_plain(ask(client))
        except SchedulerUnavailable as exc:
            print(f"mcp-orchestrator: {exc}", file=sys.stderr)
            return None


def cmd_status(args: argparse.Namespace) -> int:
    from services.cli.status_view import render_status

    state = _ask_scheduler(args, lambda client: client.status())
    if state is None:
        return 1
    if args.json:
        _print_json(state)
    else:
        import time

        sys.stdout.write(render_status(state, time.time()))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from services.cli.status_view import render_plan

    plan = _ask_scheduler(args, lambda client: client.plan())
    if plan is None:
        return 1
    if args.json:
        _print_json(plan)
    else:
        sys.stdout.write(render_plan(plan.get("steps") or []))
    return 0


# --- litellm-config --------------------------------------------------------------------


def cmd_litellm_config(args: argparse.Namespace) -> int:
    from common.litellm import LiteLLMServer, render_mcp_servers
    from services.cli.control import ControlClient, SchedulerUnavailable
    from services.scheduler.ports import allocate_ports
    from services.scheduler.server_state import public_url

    settings, config_path, _ = settings_or_exit(args)
    if args.public_url:
        from dataclasses import replace

        settings = replace(settings, service=replace(settings.service, public_base_url=args.public_url))
    state = None
    if not args.offline:
        with ControlClient(settings, timeout_ms=1500) as client:
            try:
                state = to_plain(client.status())
            except SchedulerUnavailable:
                state = None
    comments = ["mcp_servers for LiteLLM Proxy's config.yaml, made by mcp-orchestrator litellm-config"]
    servers = []
    if state is not None:
        for s in state.get("servers") or []:
            if not s.get("enabled") or s.get("removed") or s.get("status") == "disabled":
                continue
            url = public_url(settings, s["server_id"], s.get("host_port"))
            if url:
                servers.append(LiteLLMServer(s["server_id"], url))
        comments.append("servers and ports as the running scheduler reports them")
    else:
        config = load_config_for(config_path, settings)
        if not config.readable:
            for issue in config.errors:
                print(f"mcp-orchestrator: {issue}", file=sys.stderr)
            return 1
        enabled = sorted(config.enabled)
        ports = allocate_ports(enabled, (settings.service.port_range_start, settings.service.port_range_end)).ports
        for sid in enabled:
            url = public_url(settings, sid, ports.get(sid))
            if url:
                servers.append(LiteLLMServer(sid, url))
        comments.append(f"from {config_path} (the scheduler does not answer)")
        if not settings.service.public_base_url:
            comments.append(
                "ports as a fresh start would give them out; with the scheduler running, the ports in use are printed"
            )
        for sid in config.invalid:
            comments.append(f"left out: server {sid} is invalid (see mcp-orchestrator validate)")
    if settings.routing_simulated and not settings.service.public_base_url:
        comments.append("routing is simulated (no ALB configured): URLs point at the bridges")
    sys.stdout.write(render_mcp_servers(servers, comments, settings.bridge_tokens))
    return 0


# --- run -------------------------------------------------------------------------------


def cmd_keys(args: argparse.Namespace) -> int:
    """The cluster key pair for the ZeroMQ links between hosts, made once."""
    from common import curve

    _, settings_path = resolve_paths(args)
    settings, problems, _ = load_all(Path(os.devnull), settings_path)
    if problems:
        for problem in problems:
            print(f"mcp-orchestrator: {problem}", file=sys.stderr)
        return 1
    directory = Path(args.dir or settings.cluster.keys_dir)
    try:
        secret, made = curve.create_keys(directory)
    except OSError as exc:
        print(f"mcp-orchestrator: cannot write the cluster key in {directory}: {exc}", file=sys.stderr)
        return 1
    public, _ = curve.key_files(directory)
    owner = _service_owner()
    if owner is not None:  # as root: the files belong to the user the units run as
        for path in (directory, secret, public):
            os.chown(path, *owner)
    if made:
        print(f"made the cluster key pair: {secret} and {public} (owner-only)")
    else:
        print(f"the cluster key pair exists: {secret} (kept: the other hosts hold a copy)")
    print(
        f"copy both files to {directory} on every other host of the swarm (same owner, mode 600): "
        "only processes holding them can talk to each other"
    )
    return 0


def _service_owner() -> Optional[tuple[int, int]]:
    """(uid, gid) of the system user the installed units run as, when we are root."""
    import pwd

    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None
    return user.pw_uid, user.pw_gid


def cmd_run(args: argparse.Namespace) -> int:
    from services.cli import launcher

    settings, config_path, settings_path = settings_or_exit(args)
    config_path = config_path.resolve()
    settings_path = settings_path.resolve() if settings_path else None
    env = dict(os.environ)
    env["MCP_ORCHESTRATOR_CONFIG"] = str(config_path)
    if settings_path:
        env["MCP_ORCHESTRATOR_SETTINGS"] = str(settings_path)
    specs = launcher.child_specs(
        settings,
        config_path,
        settings_path,
        dashboard=not (args.no_dashboard or args.one_shot),
        container_labels=args.container_label,
    )
    if not args.no_dashboard and not args.one_shot and not any(s.name == "dashboard" for s in specs):
        print("mcp-orchestrator: no dashboard in this installation; use `mcp-orchestrator status`", file=sys.stderr)
    run = launcher.Launcher(specs, env=env, store_dir=Path(settings.zmq.runtime_dir or default_runtime_dir()))
    if settings.routing_simulated:
        run.say("no ALB configured: routing is simulated by a local AWS stand-in")
    if any(s.name == "dashboard" for s in specs):
        d = settings.dashboard
        host = "127.0.0.1" if d.host in ("0.0.0.0", "::", "") else d.host
        run.say(f"dashboard: http://{host}:{d.port}{d.path}")
    if args.one_shot:
        return launcher.run_one_shot(run, settings, timeout=args.timeout)
    return launcher.run_forever(run)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_file_options(parser)
    parser.add_argument(
        "--one-shot", action="store_true", help="reconcile once and exit: status 0 only if everything converged"
    )
    parser.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="--one-shot: how long to wait for convergence (default 180)",
    )
    parser.add_argument(
        "--container-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra label on every container created (repeatable)",
    )


# --- entry point ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-orchestrator", description="Run MCP servers as Docker containers behind an AWS ALB."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    validate = sub.add_parser(
        "validate",
        help="check settings.conf and mcp.config.json",
        description="Load both files and print every problem. Exit 1 when there is any, 0 otherwise.",
    )
    add_file_options(validate)
    validate.add_argument(
        "--json", action="store_true", help="print the resolved container specs as JSON (env values masked)"
    )
    validate.add_argument("-v", "--verbose", action="store_true", help="also print notices on how each flag is applied")
    validate.set_defaults(func=cmd_validate)

    run = sub.add_parser(
        "run",
        help="run the orchestrator's processes (the default command)",
        description="Start the container-agent, the alb-agent, the scheduler "
        "and the dashboard; Ctrl-C stops them (containers keep "
        "running).",
    )
    add_run_options(run)
    run.set_defaults(func=cmd_run)

    status = sub.add_parser(
        "status",
        help="servers, containers, ports, routes and health",
        description="Ask the running scheduler for its state.",
    )
    add_file_options(status)
    status.add_argument("--json", action="store_true", help="the full state as JSON")
    status.set_defaults(func=cmd_status)

    plan = sub.add_parser(
        "plan", help="what a reconcile would change now", description="Ask the running scheduler what it would do now."
    )
    add_file_options(plan)
    plan.add_argument("--json", action="store_true", help="the steps as JSON")
    plan.set_defaults(func=cmd_plan)

    litellm = sub.add_parser(
        "litellm-config",
        help="print the mcp_servers: block of a LiteLLM Proxy config.yaml",
        description="The enabled servers as LiteLLM Proxy MCP servers "
        "(transport http). Uses the running scheduler's ports, "
        "or the configuration alone when it does not answer.",
    )
    add_file_options(litellm)
    litellm.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="base URL clients use (default: [service] public_base_url, else http://HOST:PORT of each bridge)",
    )
    litellm.add_argument("--offline", action="store_true", help="do not ask the scheduler; use the configuration alone")
    litellm.set_defaults(func=cmd_litellm_config)

    keys = sub.add_parser(
        "keys",
        help="make the cluster key pair for the links between hosts (swarm)",
        description="Make the CurveZMQ key pair the processes of every host use to talk to each other "
        "([cluster] keys_dir), unless it exists. Run it on one host, then copy the files to the others.",
    )
    add_file_options(keys)
    keys.add_argument("--dir", default=None, metavar="DIR", help="where to put it (default: [cluster] keys_dir)")
    keys.set_defaults(func=cmd_keys)
    return parser


COMMANDS = ("validate", "run", "status", "plan", "litellm-config", "keys")


def with_default_command(argv: Sequence[str]) -> list[str]:
    """The original bare form (`mcp-orchestrator --one-shot ...`) means `run`."""
    argv = list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        return ["run", *argv]
    return argv


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(with_default_command(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
