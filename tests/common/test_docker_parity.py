"""Parity of the `docker run` parser with the real docker CLI, on a real engine.

For every argument list of the corpus, `docker create <args>` (the CLI, as a
subprocess, with the environment an MCP client would give it) and
`client.containers.create(**create_kwargs(parse_docker_run(<args>).spec))` (the Docker
SDK, as the container-agent uses it) must create the same effective container:
`docker inspect` of both is normalised by `effective()` and compared field by field.

The normaliser only removes what differs by construction, each for a stated reason:
a random hostname or name when none is set; an empty list or map against none; the order of `-e` entries in the CLI
(it merges them through a Go map, so their order changes from run to run); the CLI's
random order of `-v` binds and ulimits (also maps); the SDK's extra declarations
(bind targets in Config.Volumes, exposed-only ports as empty binding lists,
anonymous `-v` volumes listed in Binds, DeviceIDs [] for null); the random names of anonymous volumes.
Config.StopTimeout cannot be set through containers.create and is checked against
the spec instead.

Images: the local busybox image is tagged under the real image names the corpus
uses (no registry is reachable), and a derived image with ENTRYPOINT, CMD, ENV,
WORKDIR, EXPOSE, VOLUME and LABEL makes the override semantics really compared.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Sequence, Tuple

import pytest

from common.container_spec import create_kwargs
from common.docker_args import parse_docker_run
from common.secrets import Secret
from tests.harness.labels import TEST_LABEL

pytestmark = pytest.mark.docker

HERE = Path(__file__).resolve().parent
RUN_ID = uuid.uuid4().hex[:8]
DERIVED_IMAGE = f"mcp-orchestrator/parity-derived:{RUN_ID}"

# Real image names of published configs, all tagged to the local busybox image.
REAL_IMAGE_NAMES = (
    "mcp/fetch",
    "mcp/filesystem",
    "mcp/git",
    "mcp/memory",
    "mcp/time",
    "mcp/puppeteer",
    "mcp/brave-search",
    "mcp/slack",
    "mcp/sqlite",
    "mcp/sentry",
    "mcp/redis",
    "mcp/aws-documentation:latest",
    "awslabs/aws-pricing-mcp-server:latest",
    "public.ecr.aws/awslabs-mcp/awslabs/aws-api-mcp-server:latest",
    "awslabs/cloudwatch-mcp-server:latest",
    "awslabs/healthlake-mcp-server",
    "awslabs/aurora-dsql-mcp-server:latest",
    "awslabs/valkey-mcp-server:latest",
    "awslabs/security-agent-mcp-server:latest",
    "hashicorp/terraform-mcp-server:0.4.0",
    "ghcr.io/github/github-mcp-server",
    "mcr.microsoft.com/playwright/mcp:latest",
    "localhost:5000/team/mcp-server:1.0",
)


@dataclass(frozen=True)
class Case:
    """One argument list. `{tmp}`, `{vol}`, `{data}` and `{derived}` in args are
    replaced by a bind-source directory, a named volume, this test's data directory
    and the derived image."""

    id: str
    args: Tuple[str, ...]
    env_block: Dict[str, str] = field(default_factory=dict)
    process_env: Dict[str, str] = field(default_factory=dict)
    # "create": compare with `docker create`; "run-d": with `docker run -d` (for -d,
    # which `docker create` does not take).
    cli: str = "create"


CORPUS: Tuple[Case, ...] = (
    # --- shapes of the published configs (see /work/shared/real-configs) ---
    Case("fetch-minimal", ("-i", "--rm", "mcp/fetch")),
    Case(
        "filesystem-three-mounts",
        (
            "-i",
            "--rm",
            "--mount",
            "type=bind,src={tmp}/desktop,dst=/projects/Desktop",
            "--mount",
            "type=bind,src={tmp}/other,dst=/projects/other/allowed/dir,ro",
            "--mount",
            "type=bind,src={tmp}/file.txt,dst=/projects/path/to/file.txt",
            "mcp/filesystem",
            "/projects",
        ),
    ),
    Case("git-rm-before-i", ("--rm", "-i", "--mount", "type=bind,src={tmp}/home,dst=/Users/username", "mcp/git")),
    Case("memory-named-volume", ("-i", "-v", "{vol}:/app/dist", "--rm", "mcp/memory")),
    Case(
        "time-bare-env-from-process",
        ("-i", "--rm", "-e", "LOCAL_TIMEZONE", "mcp/time"),
        process_env={"LOCAL_TIMEZONE": "Europe/Paris"},
    ),
    Case("puppeteer-init-env", ("-i", "--rm", "--init", "-e", "DOCKER_CONTAINER=true", "mcp/puppeteer")),
    Case(
        "brave-bare-env-from-block",
        ("-i", "--rm", "-e", "BRAVE_API_KEY", "mcp/brave-search"),
        env_block={"BRAVE_API_KEY": "YOUR_API_KEY_HERE"},
    ),
    Case(
        "slack-three-bare-env",
        ("-i", "--rm", "-e", "SLACK_BOT_TOKEN", "-e", "SLACK_TEAM_ID", "-e", "SLACK_CHANNEL_IDS", "mcp/slack"),
        env_block={
            "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
            "SLACK_TEAM_ID": "T01234567",
            "SLACK_CHANNEL_IDS": "C01234567, C76543210",
        },
    ),
    Case(
        "sqlite-server-flags-after-image", ("--rm", "-i", "-v", "{vol}:/mcp", "mcp/sqlite", "--db-path", "/mcp/test.db")
    ),
    Case("sentry-flag-like-command", ("-i", "--rm", "mcp/sentry", "--auth-token", "YOUR_SENTRY_TOKEN")),
    Case("redis-url-command", ("-i", "--rm", "mcp/redis", "redis://host.docker.internal:6379")),
    Case(
        "aws-documentation-long-env",
        (
            "--rm",
            "--interactive",
            "--env",
            "FASTMCP_LOG_LEVEL=ERROR",
            "--env",
            "AWS_DOCUMENTATION_PARTITION=aws",
            "mcp/aws-documentation:latest",
        ),
    ),
    Case(
        "aws-pricing-env-and-env-file",
        (
            "--rm",
            "--interactive",
            "--env",
            "FASTMCP_LOG_LEVEL=DEBUG",
            "--env-file",
            "{data}/server.env",
            "awslabs/aws-pricing-mcp-server:latest",
        ),
        process_env={"FROM_ENVIRONMENT": "taken from the environment"},
    ),
    Case(
        "aws-api-volume-registry-path",
        (
            "--rm",
            "--interactive",
            "--env",
            "AWS_REGION=us-east-1",
            "--volume",
            "{tmp}/aws:/app/.aws",
            "public.ecr.aws/awslabs-mcp/awslabs/aws-api-mcp-server:latest",
        ),
    ),
    Case(
        "cloudwatch-bind-ro-placeholder-value",
        (
            "--rm",
            "--interactive",
            "-v",
            "{tmp}/aws:/root/.aws:ro",
            "-e",
            "AWS_PROFILE=[The AWS Profile Name to use for AWS access]",
            "awslabs/cloudwatch-mcp-server:latest",
        ),
    ),
    Case(
        "healthlake-no-i-readonly-arg",
        (
            "--rm",
            "-e",
            "AWS_ACCESS_KEY_ID=your_key",
            "-e",
            "AWS_SECRET_ACCESS_KEY=your_secret",
            "-e",
            "AWS_REGION=us-east-1",
            "-e",
            "MCP_LOG_LEVEL=INFO",
            "awslabs/healthlake-mcp-server",
            "--readonly",
        ),
    ),
    Case(
        "aurora-relative-env-file-server-args",
        (
            "-i",
            "--rm",
            "--env-file",
            "parity/server.env",
            "awslabs/aurora-dsql-mcp-server:latest",
            "--cluster_endpoint",
            "[your data]",
            "--database_user",
            "[your data]",
            "--region",
            "[your data]",
        ),
        process_env={"FROM_ENVIRONMENT": "x"},
    ),
    Case(
        "valkey-env-json-and-readonly",
        (
            "--rm",
            "--interactive",
            "--env",
            "FASTMCP_LOG_LEVEL=ERROR",
            "--env",
            "VALKEY_HOST=host.docker.internal",
            "--env",
            'VALKEY_OPTIONS={"tls": true, "db": 0}',
            "awslabs/valkey-mcp-server:latest",
            "--readonly",
        ),
    ),
    Case(
        "security-agent-mixed-env",
        (
            "-i",
            "--rm",
            "-e",
            "AWS_REGION=us-east-1",
            "-e",
            "AWS_ACCESS_KEY_ID",
            "-e",
            "AWS_SECRET_ACCESS_KEY",
            "awslabs/security-agent-mcp-server:latest",
        ),
        env_block={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"},
        process_env={"AWS_SECRET_ACCESS_KEY": "from-the-orchestrator-env"},
    ),
    Case(
        "terraform-tagged-third-party",
        ("-i", "--rm", "-e", "TFE_TOKEN", "-e", "TFE_ADDRESS", "hashicorp/terraform-mcp-server:0.4.0"),
        env_block={"TFE_TOKEN": "<your-token>", "TFE_ADDRESS": "https://app.terraform.io"},
    ),
    # --- flag syntax ---
    Case(
        "combined-short-flags",
        (
            "-it",
            "--rm",
            "-eA=1",
            "-e=B=2",
            "-ie",
            "C=3",
            "--rm=false",
            "-i=true",
            "-e",
            "A=last wins",
            "ghcr.io/github/github-mcp-server",
            "-t",
            "stdio",
        ),
    ),
    Case("double-dash-ends-flags", ("-i", "--pull=never", "-q", "--", "mcp/fetch", "--ignore-robots-txt")),
    Case(
        "pull-platform-registry-port",
        ("--pull", "missing", "--platform", "linux/amd64", "-i", "localhost:5000/team/mcp-server:1.0"),
    ),
    Case("detached-run", ("-itd", "-e", "MODE=detached", "mcp/fetch"), cli="run-d"),
    # --- entrypoint / cmd / env / workdir overrides against a real image config ---
    Case("derived-image-defaults", ("-i", "{derived}")),
    Case("derived-command-override", ("-i", "-e", "SHARED=from -e", "{derived}", "one", "two")),
    Case("derived-entrypoint-cleared", ("-i", "--entrypoint", "", "{derived}", "/bin/sh", "-c", "echo hi")),
    Case(
        "derived-entrypoint-with-space",
        ("-i", "--entrypoint", "/bin/echo hi", "-w", "/tmp", "-u", "1000:1000", "{derived}", "a", "b"),
    ),
    # --- every other supported flag ---
    Case(
        "resources",
        (
            "-i",
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--memory-reservation",
            "32m",
            "--memory-swappiness",
            "10",
            "--cpus",
            "1.5",
            "--shm-size",
            "32m",
            "--pids-limit",
            "50",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--cpuset-mems",
            "0",
            "--oom-score-adj",
            "100",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "nproc=100",
            "--ulimit",
            "nofile=2048",
            "mcp/time",
        ),
    ),
    Case(
        "cpu-period-quota",
        (
            "-i",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "50000",
            "-m=1g",
            "--memory-swap=-1",
            "--oom-kill-disable",
            "mcp/time",
        ),
    ),
    Case(
        "security",
        (
            "-i",
            "--read-only",
            "--cap-add",
            "net_admin",
            "--cap-add",
            "CAP_SYS_TIME",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "seccomp={data}/seccomp-profile.json",
            "--group-add",
            "123",
            "--group-add",
            "audio",
            "--device",
            "/dev/null:/dev/mynull:r",
            "--device",
            "/dev/zero",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=0",
            "--privileged",
            "mcp/time",
        ),
    ),
    Case(
        "namespaces-runtime",
        (
            "-i",
            "--ipc",
            "shareable",
            "--pid",
            "host",
            "--uts",
            "host",
            "--userns",
            "host",
            "--cgroupns",
            "private",
            "--runtime",
            "runc",
            "mcp/time",
        ),
    ),
    Case(
        "network-bridge-ports-hosts",
        (
            "-i",
            "--network",
            "bridge",
            "--add-host",
            "db.internal:10.0.0.5",
            "--add-host",
            "cache=10.0.0.6",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "10.0.0.2",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "-h",
            "mcp-host",
            "--domainname",
            "example.org",
            "--expose",
            "9000",
            "--expose",
            "9100-9101/udp",
            "-p",
            "127.0.0.1:18080:80",
            "-p",
            "18081:81/udp",
            "-p",
            "82",
            "-p",
            "18090-18091:90-91",
            "mcp/fetch",
        ),
    ),
    Case("network-none-short-aliases", ("-i", "--net=none", "--dns-opt", "use-vc", "mcp/fetch")),
    Case("network-host", ("-i", "--network", "host", "mcp/fetch")),
    Case(
        "mounts-tmpfs-volumes",
        (
            "-i",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/cache:rw,size=16m,mode=1777",
            "--mount",
            "type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=1770",
            "--mount",
            "type=volume,source={vol},target=/data,volume-nocopy",
            "--mount",
            "type=volume,dst=/anon-mount,volume-label=purpose=parity",
            "--mount",
            "type=bind,src={tmp}/home,dst=/slave,bind-propagation=rslave",
            "--mount",
            "type=bind,source={tmp}/aws,destination=/rw,readonly=false",
            "--mount",
            "type=bind,src={tmp}/aws,target=/ro2,ro=true,bind-nonrecursive",
            "-v",
            "/anonymous-volume",
            "-v",
            "{tmp}/aws:/explicit-rw:rw",
            "mcp/memory",
        ),
    ),
    Case(
        "labels-logging-lifecycle",
        (
            "-i",
            "-l",
            "org.example.a=1",
            "--label",
            "org.example.flag",
            "--label-file",
            "{data}/labels.txt",
            "-l",
            "org.example.team=override",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "7",
            "--no-healthcheck",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "max-file=2",
            "--restart",
            "on-failure:3",
            "--init=false",
            "--name",
            f"parity-named-{RUN_ID}",
            "mcp/fetch",
        ),
    ),
    Case(
        "syntax-corners",
        (
            "-uapp",
            "-ie=A=1",
            "-it=false",
            "-c",
            "256",
            "-p",
            "8000-8010:80",
            "--publish=published=18085,target=85",
            "--restart",
            "no",
            "--rm",
            "--dns-search",
            ".",
            "--add-host",
            "h6=::1",
            "--add-host",
            "h7:[::2]",
            "--dns",
            "::ffff:10.0.0.3",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run:size=1m",
            "--stop-signal=9",
            "--expose",
            "90",
            "--expose",
            "90",
            "--ulimit",
            "core=-1:-1",
            "--sysctl",
            "kernel.shmmax=65536",
            "--mount",
            "type=TMPFS,dst=/upper",
            "--env-file",
            "{tmp}/windows.env",
            "-e",
            "TOKEN",
            "-e",
            "EMPTY=",
            "--device",
            "/dev/null/",
            "mcp/time",
        ),
        env_block={"TOKEN": "from the block", "BARE": "bare from the block"},
    ),
    Case(
        "gpus-restart-always",
        (
            "-i",
            "--gpus",
            "all",
            "--gpus",
            'driver=nvidia,"device=0,1",capabilities=compute',
            "--restart",
            "unless-stopped",
            "mcp/fetch",
        ),
    ),
)


# --- fixtures --------------------------------------------------------------------------


def _split_tag(ref: str) -> Tuple[str, str]:
    head, slash, last = ref.rpartition("/")
    if ":" in last:
        name, _, tag = last.partition(":")
        return f"{head}{slash}{name}", tag
    return ref, "latest"


class ParityHost:
    """What the corpus needs on the engine, and everything to remove afterwards."""

    def __init__(self, client, busybox: str, tmp: Path) -> None:
        self.client = client
        self.busybox = busybox
        self.tmp = tmp
        self.volumes: set = set()
        self.tags: list = []
        self.docker_config = tmp / "docker-config"  # no proxies injected by the CLI
        self.docker_config.mkdir()

    def tag_real_names(self) -> None:
        import docker.errors

        image = self.client.images.get(self.busybox)
        for ref in REAL_IMAGE_NAMES:
            try:
                self.client.images.get(ref)
                continue  # someone else's tag: use it as it is, never remove it
            except docker.errors.ImageNotFound:
                pass
            repo, tag = _split_tag(ref)
            image.tag(repo, tag)
            self.tags.append(f"{repo}:{tag}")

    def build_derived(self) -> None:
        dockerfile = (
            f"FROM {self.busybox}\n"
            "ENV BASE_ONE=1 SHARED=from-image\n"
            "WORKDIR /srv\n"
            'ENTRYPOINT ["/bin/echo", "entry"]\n'
            'CMD ["default-cmd"]\n'
            "EXPOSE 7000\n"
            'VOLUME ["/image-volume"]\n'
            f'LABEL org.example.from-image=yes {TEST_LABEL}="1"\n'
            "STOPSIGNAL SIGUSR1\n"
        )
        self.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=DERIVED_IMAGE, rm=True, forcerm=True)
        self.tags.append(DERIVED_IMAGE)

    def substitute(self, case: Case) -> Tuple[str, ...]:
        vol = f"parity-{case.id[:20]}-{RUN_ID}"
        out = []
        for a in case.args:
            if "{vol}" in a:
                self.volumes.add(vol)
            out.append(
                a.replace("{tmp}", str(self.tmp / "binds"))
                .replace("{vol}", vol)
                .replace("{data}", str(HERE / "parity"))
                .replace("{derived}", DERIVED_IMAGE)
            )
        return tuple(out)

    def cleanup(self) -> None:
        import docker.errors

        for name in self.volumes:
            try:
                self.client.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        for ref in self.tags:
            try:
                self.client.images.remove(ref, noprune=False)
            except docker.errors.APIError:
                pass


@pytest.fixture(scope="module")
def parity_host(docker_client, busybox_image, tmp_path_factory):
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    host = ParityHost(docker_client, busybox_image, tmp_path_factory.mktemp("parity"))
    binds = host.tmp / "binds"
    for d in ("desktop", "other", "home", "aws"):
        (binds / d).mkdir(parents=True)
    (binds / "file.txt").write_text("a file to bind\n")
    (binds / "windows.env").write_bytes(b"\xef\xbb\xbfA=1\r\n\r\n# c\r\nBARE\r\n\tB=2 \r\n")
    try:
        host.tag_real_names()
        host.build_derived()
        yield host
    finally:
        host.cleanup()


# --- the comparison ---------------------------------------------------------------------


def _remove_container(client, container_id: str) -> None:
    import docker.errors

    try:
        client.api.remove_container(container_id, v=True, force=True)
    except docker.errors.NotFound:
        pass


def cli_inspect(host: ParityHost, case: Case, args: Sequence[str]) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_CONFIG": str(host.docker_config)}
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    # What an MCP client does: its own environment overlaid with the server's env block.
    env.update(case.process_env)
    env.update(case.env_block)
    verb = ["run", "-d"] if case.cli == "run-d" else ["create"]
    cmd = ["docker", *verb, "--label", f"{TEST_LABEL}=1", *args]
    proc = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"docker {' '.join(verb)} failed: {proc.stderr.strip()}"
    container_id = proc.stdout.strip().splitlines()[-1]
    try:
        return host.client.api.inspect_container(container_id)
    finally:
        _remove_container(host.client, container_id)


def sdk_inspect(host: ParityHost, kwargs: dict) -> dict:
    kwargs = dict(kwargs)
    kwargs["labels"] = {**kwargs.get("labels", {}), TEST_LABEL: "1"}
    container = host.client.containers.create(**kwargs)
    try:
        return host.client.api.inspect_container(container.id)
    finally:
        _remove_container(host.client, container.id)


def effective(inspect: dict, *, env_file_count: int, name_given: bool, hostname_given: bool) -> Dict[str, object]:
    """The effective configuration of a container, flattened for a readable diff."""
    config = dict(inspect["Config"])
    host = dict(inspect["HostConfig"])
    out: Dict[str, object] = {}

    env = list(config.pop("Env", None) or [])
    # The CLI keeps --env-file order but sends -e entries through a Go map.
    out["Config.Env[env-file part, in order]"] = env[:env_file_count]
    out["Config.Env[rest, sorted]"] = sorted(env[env_file_count:])
    if not hostname_given:
        config.pop("Hostname", None)  # a random container-ID prefix
    config.pop("StopTimeout", None)  # checked against the spec (the SDK cannot set it)

    binds = [b for b in host.pop("Binds", None) or [] if ":" in b]
    bind_targets = {b.split(":")[1] for b in binds}
    volumes = {k: v for k, v in (config.pop("Volumes", None) or {}).items() if k not in bind_targets}
    out["Config.Volumes"] = volumes or None
    out["HostConfig.Binds"] = sorted(binds) or None
    ports = {k: v for k, v in (host.pop("PortBindings", None) or {}).items() if v}
    out["HostConfig.PortBindings"] = ports
    out["HostConfig.Ulimits"] = sorted(host.pop("Ulimits", None) or [], key=lambda u: u["Name"])
    # The SDK sends DeviceIDs [] where the CLI sends null: no specific device either way.
    out["HostConfig.DeviceRequests"] = [
        {**r, "DeviceIDs": r.get("DeviceIDs") or None} for r in host.pop("DeviceRequests", None) or []
    ] or None
    # An empty list or map means the same as none (the CLI sends [], the SDK omits it).
    for key, value in config.items():
        out[f"Config.{key}"] = value if value not in ([], {}) else None
    for key, value in host.items():
        out[f"HostConfig.{key}"] = value if value not in ([], {}) else None

    mounts = []
    for m in inspect.get("Mounts") or []:
        m = dict(m)
        if m.get("Type") == "volume" and len(m.get("Name", "")) == 64:
            m["Name"] = "<anonymous>"
            m["Source"] = "<anonymous>"
            m.pop("Mode", None)  # '' when declared in Config.Volumes, 'z' via Binds
        mounts.append(m)
    out["Mounts"] = sorted(mounts, key=lambda m: m["Destination"])
    out["Path"] = inspect.get("Path")
    out["Args"] = inspect.get("Args")
    out["Platform"] = inspect.get("Platform")
    out["Driver"] = inspect.get("Driver")
    if name_given:
        out["Name"] = inspect.get("Name")
    out["NetworkSettings.Networks"] = sorted((inspect.get("NetworkSettings") or {}).get("Networks") or {})
    return out


def diff_text(cli: Dict[str, object], sdk: Dict[str, object]) -> str:
    lines = []
    for key in sorted(set(cli) | set(sdk)):
        a, b = cli.get(key, "<absent>"), sdk.get(key, "<absent>")
        if a != b:
            sa = json.dumps(a, indent=1, sort_keys=True).splitlines()
            sb = json.dumps(b, indent=1, sort_keys=True).splitlines()
            lines.append(f"--- {key}: docker CLI vs SDK")
            lines.extend(difflib.unified_diff(sa, sb, "cli", "sdk", lineterm="", n=2))
    return "\n".join(lines)


def test_corpus_is_big_enough_and_uses_every_supported_flag():
    assert len(CORPUS) >= 25
    assert len({c.id for c in CORPUS}) == len(CORPUS)
    from common.docker_args.flags import BY_NAME
    from common.docker_args.run import Run
    from common.docker_args.split import split_args

    used = set()
    for case in CORPUS:
        run = Run({}, {}, HERE)
        occurrences, _, _, complete = split_args(case.args, run)
        assert complete, case.id
        used |= {o.flag.name for o in occurrences}
    supported = {f.name for f in BY_NAME.values() if not f.unsupported and not f.no_effect}
    assert sorted(supported - used) == []


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_sdk_container_matches_docker_cli(parity_host: ParityHost, case: Case):
    args = parity_host.substitute(case)
    parsed = parse_docker_run(
        args, env_block={k: Secret(v) for k, v in case.env_block.items()}, process_env=case.process_env, base_dir=HERE
    )
    errors = [i for i in parsed.issues if i.severity == "error"]
    assert parsed.spec is not None and not errors, errors
    spec = parsed.spec
    kwargs = create_kwargs(spec)

    cli = cli_inspect(parity_host, case, args)
    sdk = sdk_inspect(parity_host, kwargs)

    shape = dict(
        env_file_count=spec.env_file_count, name_given=spec.name is not None, hostname_given=spec.hostname is not None
    )
    cli_view, sdk_view = effective(cli, **shape), effective(sdk, **shape)
    assert cli_view == sdk_view, "\n" + diff_text(cli_view, sdk_view)

    # What the normaliser set aside, checked directly:
    expected_env = [f"{k}={v.reveal()}" for k, v in spec.env]
    assert sdk["Config"]["Env"][: len(expected_env)] == expected_env  # the spec's own order
    assert cli["Config"].get("StopTimeout") == spec.stop_timeout
