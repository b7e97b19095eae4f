"""`mcp-orchestrator`: the command line for operators.

    mcp-orchestrator validate [--config PATH] [--settings PATH] [--json]

Exit status: 0 when everything is valid, 1 when any problem was found, 2 for a
usage error.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from common.config import McpConfig, load_config
from common.settings import Settings, SettingsError, load_settings

SYSTEM_DIR = Path("/etc/mcp-orchestrator")


def default_path(env_var: str, name: str) -> Path:
    """$env_var, else ./name when it exists, else /etc/mcp-orchestrator/name."""
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    local = Path.cwd() / name
    return local if local.exists() else SYSTEM_DIR / name


def add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="PATH",
                        help="MCP servers file (default: $MCP_ORCHESTRATOR_CONFIG, "
                             "./mcp.config.json, /etc/mcp-orchestrator/mcp.config.json)")
    parser.add_argument("--settings", type=Path, default=None, metavar="PATH",
                        help="settings file (default: $MCP_ORCHESTRATOR_SETTINGS, "
                             "./settings.conf, /etc/mcp-orchestrator/settings.conf)")


def resolve_paths(args: argparse.Namespace) -> tuple[Path, Optional[Path]]:
    config = args.config or default_path("MCP_ORCHESTRATOR_CONFIG", "mcp.config.json")
    settings = args.settings or default_path("MCP_ORCHESTRATOR_SETTINGS", "settings.conf")
    # A missing settings file is fine when nobody asked for one: defaults apply.
    if args.settings is None and "MCP_ORCHESTRATOR_SETTINGS" not in os.environ \
            and not settings.exists():
        return config, None
    return config, settings


def load_all(config_path: Path,
             settings_path: Optional[Path]) -> tuple[Settings, list[str], McpConfig]:
    """Settings (defaults when invalid), settings problems, and the checked config."""
    problems: list[str] = []
    try:
        settings = load_settings(settings_path)
    except SettingsError as exc:
        problems = exc.problems
        settings = Settings()  # still check the servers against the defaults
    port_range = (settings.service.port_range_start, settings.service.port_range_end)
    return settings, problems, load_config(config_path, port_range=port_range)


# --- validate ----------------------------------------------------------------------

LABEL = {"error": "error  ", "warning": "warning", "info": "notice "}


def cmd_validate(args: argparse.Namespace) -> int:
    config_path, settings_path = resolve_paths(args)
    settings, settings_problems, config = load_all(config_path, settings_path)
    failed = bool(settings_problems) or not config.ok

    if args.json:
        out = {
            "ok": not failed,
            "settings": {"source": str(settings_path) if settings_path else None,
                         "problems": settings_problems,
                         "values": settings.public_dict()},
            "config": config.public_dict(),
        }
        json.dump(out, sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
        return 1 if failed else 0

    where = settings_path if settings_path else "built-in defaults (no settings.conf)"
    print(f"settings: {where}: " + ("OK" if not settings_problems
                                    else f"{len(settings_problems)} problem(s)"))
    for problem in settings_problems:
        print(f"  error   {problem}")
    enabled = len(config.enabled)
    disabled = len(config.servers) - enabled
    summary = (f"{enabled} enabled, {disabled} disabled, {len(config.invalid)} invalid, "
               f"{len(config.skipped)} skipped")
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
        print("routing:  no ALB configured ([aws] alb_arn/listener_arn empty): routes go to a "
              "local AWS stand-in (simulated)")
    print("result:   " + ("invalid" if failed else "valid"))
    return 1 if failed else 0


# --- entry point ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-orchestrator",
        description="Run MCP servers as Docker containers behind an AWS ALB.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    validate = sub.add_parser("validate", help="check settings.conf and mcp.config.json",
                              description="Load both files and print every problem. Exit 1 "
                                          "when there is any, 0 otherwise.")
    add_file_options(validate)
    validate.add_argument("--json", action="store_true",
                          help="print the resolved container specs as JSON (env values masked)")
    validate.add_argument("-v", "--verbose", action="store_true",
                          help="also print notices on how each flag is applied")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
