"""The `docker run` arguments of an MCP server config, parsed as the docker CLI parses them.

`parse_docker_run` gives the faithful meaning of the args (what `docker create` with
the same args would create) as a `ContainerSpec`, plus every problem found as an
`ArgIssue`. `orchestrated` then applies the orchestrator's own policy (no TTY, stdin
always open, the orchestrator names and removes containers itself, ...).

Flag syntax follows spf13/pflag as the CLI configures it (`split`); every flag of
`docker run --help` is in one table (`flags`), supported by a handler (`fields`,
`env_labels`, `mounts`, `networking`, `host_access`) or refused with a reason. Checks
that need several flags run last (`checks`).

Env values are secrets: they are wrapped in `Secret` and no issue message ever shows
one. Relative paths of files the args name (`--env-file`, `--label-file`, a seccomp
profile) are resolved against `base_dir`, the config file's directory.
"""

from common.docker_args.parser import ParsedRun, parse_docker_run
from common.docker_args.policy import RESERVED_LABEL_PREFIX, orchestrated

__all__ = ["ParsedRun", "RESERVED_LABEL_PREFIX", "orchestrated", "parse_docker_run"]
