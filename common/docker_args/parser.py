"""`parse_docker_run`: the args of one server, read flag by flag into a `ContainerSpec`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

from common.container_spec import ArgIssue, ContainerSpec
from common.docker_args.checks import check_combinations, check_mount_targets, warn_unused_env_block
from common.docker_args.run import ERROR, Bad, Run
from common.docker_args.split import split_args
from common.docker_args.values import INPUT_PLACEHOLDER, env_shown, image_problem
from common.secrets import Secret


@dataclass(frozen=True)
class ParsedRun:
    spec: Optional[ContainerSpec]  # None when there is any error
    issues: Tuple[ArgIssue, ...]

    @property
    def errors(self) -> Tuple[ArgIssue, ...]:
        return tuple(i for i in self.issues if i.severity == ERROR)


def parse_docker_run(
    args: Sequence[str], *, env_block: Mapping[str, Secret], process_env: Mapping[str, str], base_dir: Path
) -> ParsedRun:
    """`args` are what follows "run" in the config's args array."""
    run = Run(env_block, process_env, Path(base_dir))
    for secret in env_block.values():
        if not isinstance(secret, Secret):
            raise TypeError("env_block values must be Secret")
    occurrences, image, command, complete = split_args(args, run)
    for occ in occurrences:
        flag = occ.flag
        if flag.unsupported:
            run.error(
                occ.written, f"docker run flag {occ.written} is not supported by the orchestrator: {flag.unsupported}"
            )
            continue
        if flag.no_effect:
            run.info(occ.written, f"{occ.written} has no effect here: {flag.no_effect}")
            continue
        if not flag.secret and INPUT_PLACEHOLDER in occ.value:
            run.error(
                occ.written,
                f"{occ.written} {occ.value}: ${{input:…}} is a VS Code "
                "input variable that only a VS Code client fills in; "
                "write the value itself",
            )
            continue
        try:
            flag.handler(run, occ.written, occ.value)
        except Bad as bad:
            shown = f"{occ.written} {env_shown(occ.value)}" if flag.secret else occ.written
            run.error(occ.written, f"{shown}: {bad}")
    if not complete:
        return ParsedRun(None, tuple(run.issues))

    if image is None:
        run.error(None, "no image: docker run needs an image after its flags")
    else:
        if INPUT_PLACEHOLDER in image:
            run.error(
                None,
                f"the image '{image}' holds a VS Code input variable "
                "(${input:…}) that only a VS Code client fills in",
            )
        else:
            problem = image_problem(image)
            if problem:
                run.error(None, problem)
    for arg in command:
        if INPUT_PLACEHOLDER in arg:
            run.error(
                None,
                f"the command argument '{arg}' holds a VS Code input variable "
                "(${input:…}) that only a VS Code client fills in; write the "
                "value itself",
            )

    warn_unused_env_block(run)

    f = run.fields
    f["env"] = tuple(run.env_file_entries) + tuple(run.env_flag_entries.items())
    f["env_file_count"] = len(run.env_file_entries)
    labels = dict(run.label_file_labels)
    labels.update(run.labels)
    f["labels"] = tuple(labels.items())
    for key in (
        "volumes",
        "mounts",
        "ports",
        "exposed",
        "extra_hosts",
        "dns",
        "dns_search",
        "dns_options",
        "security_opt",
        "group_add",
        "devices",
        "gpus",
    ):
        if key in run.lists:
            f[key] = tuple(run.lists[key])
    if "volumes" in f:
        # The CLI keeps -v entries in a set: an exact repeat is one entry.
        f["volumes"] = tuple({v.spec: v for v in f["volumes"]}.values())  # type: ignore
    if "exposed" in f:
        f["exposed"] = tuple(dict.fromkeys(f["exposed"]))  # type: ignore
    for key in ("cap_add", "cap_drop"):
        if key in run.lists:
            f[key] = tuple(sorted(set(run.lists[key])))
    for key in ("tmpfs", "sysctls", "log_options"):
        if key in run.maps:
            f[key] = tuple(run.maps[key].items())
    if "ulimits" in run.maps:
        f["ulimits"] = tuple(run.maps["ulimits"].values())
    if run.networks:
        f["network"] = run.networks[-1]
    check_combinations(run, f)
    check_mount_targets(run, f)

    if any(i.severity == ERROR for i in run.issues) or image is None:
        return ParsedRun(None, tuple(run.issues))
    spec = ContainerSpec(image=image, command=command, **f)  # type: ignore[arg-type]
    return ParsedRun(spec, tuple(run.issues))
