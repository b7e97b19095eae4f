"""Unit tests of the `docker run` argument parser: every flag form, every error message,
the orchestrator's policy, the SDK kwargs, the drift hash, the 34 published configs and
the secrecy of env values. Pure logic: no Docker engine needed (parity with the real
CLI is in test_docker_parity.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

from common.container_spec import (
    ArgIssue,
    ContainerSpec,
    DeviceMapping,
    GpuRequest,
    MountSpec,
    PortBinding,
    RestartPolicy,
    Ulimit,
    VolumeSpec,
    create_kwargs,
    spec_hash,
)
from common.docker_args import ParsedRun, orchestrated, parse_docker_run
from common.docker_args.flags import BY_NAME, BY_SHORT, FLAGS, Flag
from common.secrets import Secret

HERE = Path(__file__).resolve().parent
DATA = HERE / "parity"
# The 34 published configs (copied from the project's shared real-configs, INDEX.md included).
REAL_CONFIGS = DATA / "real-configs"
ROOT = HERE.parent.parent
IMG = "mcp/time"


def parse(
    args: Sequence[str],
    env: Optional[Dict[str, str]] = None,
    penv: Optional[Dict[str, str]] = None,
    base_dir: Path = HERE,
) -> ParsedRun:
    return parse_docker_run(
        list(args), env_block={k: Secret(v) for k, v in (env or {}).items()}, process_env=penv or {}, base_dir=base_dir
    )


def spec_of(*args: str, **kw) -> ContainerSpec:
    result = parse(args, **kw)
    assert result.spec is not None, result.issues
    assert not result.errors
    return result.spec


def env_of(spec: ContainerSpec) -> list:
    return [(k, v.reveal()) for k, v in spec.env]


def errors_of(result: ParsedRun) -> list:
    return [(i.flag, i.message) for i in result.issues if i.severity == "error"]


def warnings_of(result: ParsedRun) -> list:
    return [(i.flag, i.message) for i in result.issues if i.severity == "warning"]


# --- flag syntax (pflag rules) ------------------------------------------------------


@pytest.mark.parametrize(
    "args, field, expected",
    [
        (["-i", IMG], "stdin_open", True),
        (["--interactive", IMG], "stdin_open", True),
        (["-i=false", IMG], "stdin_open", False),
        (["--interactive=false", IMG], "stdin_open", False),
        ([IMG], "stdin_open", False),
        (["-it", IMG], "tty", True),
        (["-ti", IMG], "stdin_open", True),
        (["-it=false", IMG], "tty", False),
        (["-itd", IMG], "detach", True),
        (["--detach", IMG], "detach", True),
        (["--rm", IMG], "auto_remove", True),
        (["--rm=false", IMG], "auto_remove", False),
        (["--rm=0", IMG], "auto_remove", False),
        (["--rm=T", IMG], "auto_remove", True),
        (["--rm", "--rm=false", IMG], "auto_remove", False),  # the last one wins
        (["--init", IMG], "init", True),
        (["--init=false", IMG], "init", False),
        ([IMG], "init", None),
        (["--name", "my-server", IMG], "name", "my-server"),
        (["--name=my-server", IMG], "name", "my-server"),
        (["-u", "1000:1000", IMG], "user", "1000:1000"),
        (["--user=app", IMG], "user", "app"),
        (["-uapp", IMG], "user", "app"),
        (["-w", "/srv", IMG], "working_dir", "/srv"),
        (["--workdir=/srv", IMG], "working_dir", "/srv"),
        (["-h", "box", IMG], "hostname", "box"),
        (["--hostname", "box", IMG], "hostname", "box"),
        (["--domainname", "example.org", IMG], "domainname", "example.org"),
        (["--network", "host", IMG], "network", "host"),
        (["--network=none", IMG], "network", "none"),
        (["--net", "bridge", IMG], "network", "bridge"),
        (["--net=my-net", IMG], "network", "my-net"),
        (["--network", "container:other", IMG], "network", "container:other"),
        (["--pull", "always", IMG], "pull", "always"),
        (["--pull=always", IMG], "pull", "always"),
        (["--pull=never", IMG], "pull", "never"),
        ([IMG], "pull", "missing"),
        (["--platform", "linux/amd64", IMG], "platform", "linux/amd64"),
        (["--platform=linux/arm64/v8", IMG], "platform", "linux/arm64/v8"),
        (["--read-only", IMG], "read_only", True),
        (["--privileged", IMG], "privileged", True),
        (["--no-healthcheck", IMG], "healthcheck_disabled", True),
        (["--oom-kill-disable", IMG], "oom_kill_disable", True),
        (["--entrypoint", "/bin/sh", IMG], "entrypoint", ("/bin/sh",)),
        (["--entrypoint=/bin/echo hi", IMG], "entrypoint", ("/bin/echo hi",)),  # never split
        (["--entrypoint", "", IMG], "entrypoint", ("",)),
        (["--entrypoint=", IMG], "entrypoint", ("",)),
        ([IMG], "entrypoint", None),
        (["--stop-signal", "SIGINT", IMG], "stop_signal", "SIGINT"),
        (["--stop-signal=9", IMG], "stop_signal", "9"),
        (["--stop-timeout", "7", IMG], "stop_timeout", 7),
        (["--pids-limit", "-1", IMG], "pids_limit", -1),
        (["--cpu-shares", "512", IMG], "cpu_shares", 512),
        (["-c", "256", IMG], "cpu_shares", 256),
        (["--cpu-period", "100000", IMG], "cpu_period", 100000),
        (["--cpu-quota", "-1", IMG], "cpu_quota", -1),
        (["--cpuset-cpus", "0-3,5", IMG], "cpuset_cpus", "0-3,5"),
        (["--cpuset-mems", "0", IMG], "cpuset_mems", "0"),
        (["--memory-swappiness", "0", IMG], "memory_swappiness", 0),
        (["--memory-swappiness=-1", IMG], "memory_swappiness", -1),
        (["--oom-score-adj", "-500", IMG], "oom_score_adj", -500),
        (["--ipc", "host", IMG], "ipc", "host"),
        (["--ipc", "container:db", IMG], "ipc", "container:db"),
        (["--pid", "host", IMG], "pid", "host"),
        (["--uts", "host", IMG], "uts", "host"),
        (["--userns", "host", IMG], "userns", "host"),
        (["--cgroupns", "private", IMG], "cgroupns", "private"),
        (["--runtime", "runc", IMG], "runtime", "runc"),
        (["--log-driver", "local", IMG], "log_driver", "local"),
        (["--restart", "always", IMG], "restart", RestartPolicy("always")),
        (["--restart=on-failure:3", IMG], "restart", RestartPolicy("on-failure", 3)),
        (["--restart", "on-failure", IMG], "restart", RestartPolicy("on-failure")),
        (["--restart", "no", "--rm", IMG], "restart", RestartPolicy("no")),
    ],
)
def test_flag_forms(args, field, expected):
    assert getattr(spec_of(*args), field) == expected


@pytest.mark.parametrize(
    "args, image, command",
    [
        (["-i", "--rm", IMG], IMG, ()),
        (["-i", IMG, "-t", "stdio"], IMG, ("-t", "stdio")),
        (["-i", IMG, "--region", "x", "--readonly"], IMG, ("--region", "x", "--readonly")),
        (["-i", IMG, "--db-path", "/mcp/test.db"], IMG, ("--db-path", "/mcp/test.db")),
        (["-i", IMG, "-e", "NOT_DOCKER=1", "--rm"], IMG, ("-e", "NOT_DOCKER=1", "--rm")),
        (["-i", "--", IMG, "-i"], IMG, ("-i",)),
        (["--", "-not-an-image-flag"], "-not-an-image-flag", None),  # image check rejects it
        (["-i", IMG, "${HOME}/x", "~/y", "a b"], IMG, ("${HOME}/x", "~/y", "a b")),
        (["-i", IMG, ""], IMG, ("",)),
    ],
)
def test_image_and_untouched_command(args, image, command):
    result = parse(args)
    if command is None:
        assert result.spec is None
        assert "invalid image reference '-not-an-image-flag'" in errors_of(result)[0][1]
        return
    assert result.spec is not None, result.issues
    assert result.spec.image == image
    assert result.spec.command == command
    assert result.spec.stdin_open is True


def test_command_arguments_are_not_flags():
    spec = spec_of("-i", IMG, "-t", "-d", "--rm", "--name", "x")
    assert (spec.tty, spec.detach, spec.auto_remove, spec.name) == (False, False, False, None)


# --- env ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["-e", "A=1", IMG],
        ["-eA=1", IMG],
        ["-e=A=1", IMG],
        ["--env", "A=1", IMG],
        ["--env=A=1", IMG],
        ["-ie", "A=1", IMG],
        ["-ieA=1", IMG],
        ["-ie=A=1", IMG],
    ],
)
def test_env_flag_forms(args):
    assert env_of(spec_of(*args)) == [("A", "1")]


def test_env_values_kept_as_written():
    spec = spec_of(
        "-e",
        'CONFIG={"a": 1, "b": [2, 3]}',
        "-e",
        "EMPTY=",
        "-e",
        "EQ=a=b=c",
        "-e",
        "HOME_PATH=~/x",
        "-e",
        "VAR=${HOME}/$USER",
        "-e",
        "SPACES= x ",
        "-e",
        "IDS=C01234567, C76543210",
        IMG,
    )
    assert env_of(spec) == [
        ("CONFIG", '{"a": 1, "b": [2, 3]}'),
        ("EMPTY", ""),
        ("EQ", "a=b=c"),
        ("HOME_PATH", "~/x"),
        ("VAR", "${HOME}/$USER"),
        ("SPACES", " x "),
        ("IDS", "C01234567, C76543210"),
    ]


def test_bare_env_takes_env_block_then_process_env():
    spec = spec_of(
        "-e",
        "FROM_BLOCK",
        "-e",
        "FROM_PROCESS",
        "-e",
        "BOTH",
        IMG,
        env={"FROM_BLOCK": "b", "BOTH": "block wins"},
        penv={"FROM_PROCESS": "p", "BOTH": "process loses"},
    )
    assert env_of(spec) == [("FROM_BLOCK", "b"), ("FROM_PROCESS", "p"), ("BOTH", "block wins")]


def test_bare_env_with_an_empty_value_is_an_explicit_empty_value():
    assert env_of(spec_of("-e", "X", IMG, env={"X": ""})) == [("X", "")]
    assert env_of(spec_of("-e", "X", IMG, penv={"X": ""})) == [("X", "")]


def test_unresolved_bare_env_is_an_error_not_an_empty_variable():
    result = parse(["-i", "-e", "LOCAL_TIMEZONE", IMG])
    assert result.spec is None
    assert errors_of(result) == [
        (
            "-e",
            "-e LOCAL_TIMEZONE: no value for LOCAL_TIMEZONE in the "
            "server's env block or the orchestrator's environment",
        )
    ]


def test_env_order_is_env_files_then_e_flags_one_entry_per_name(tmp_path):
    env_file = tmp_path / "a.env"
    env_file.write_text("F1=1\nDUP=file\nF1=again\n")
    spec = spec_of("-e", "Z=1", "-e", "DUP=first", "--env-file", str(env_file), "-e", "Y=2", "-e", "DUP=last", IMG)
    # --env-file entries keep their order and repeats; -e entries are merged by name
    # (the docker CLI passes them through a map), the last value winning.
    assert env_of(spec) == [("F1", "1"), ("DUP", "file"), ("F1", "again"), ("Z", "1"), ("DUP", "last"), ("Y", "2")]
    assert spec.env_file_count == 3


def test_env_file_format(tmp_path):
    spec = spec_of("--env-file", str(DATA / "server.env"), IMG, penv={"FROM_ENVIRONMENT": "from the environment"})
    assert env_of(spec) == [
        ("FASTMCP_LOG_LEVEL", "ERROR"),
        ("INDENTED", "kept as written, trailing spaces too  "),
        ("QUOTED", '"quotes are part of the value"'),
        ("JSON_CONFIG", '{"region": "us-east-1", "retries": 3}'),
        ("EMPTY", ""),
        ("FROM_ENVIRONMENT", "from the environment"),
        ("SHARED", "from the env file"),
    ]


def test_env_file_bom_crlf_and_bare_name_from_env_block(tmp_path):
    f = tmp_path / "win.env"
    f.write_bytes(b"\xef\xbb\xbfA=1\r\n\r\n# c\r\nTOKEN\r\n\tB=2\r\n")
    spec = spec_of("--env-file", str(f), IMG, env={"TOKEN": "t"})
    assert env_of(spec) == [("A", "1"), ("TOKEN", "t"), ("B", "2")]


def test_relative_env_file_resolves_against_base_dir():
    spec = spec_of("--env-file", "parity/server.env", IMG, penv={"FROM_ENVIRONMENT": "x"}, base_dir=HERE)
    assert spec.env[0][0] == "FASTMCP_LOG_LEVEL"


def test_env_block_keys_without_a_bare_e_are_warned_about_by_name():
    result = parse(["-i", "-e", "USED", IMG], env={"USED": "1", "FASTMCP_LOG_LEVEL": "INFO", "NEPTUNE_ENDPOINT": "x"})
    assert result.spec is not None
    assert env_of(result.spec) == [("USED", "1")]  # like docker: not passed
    assert warnings_of(result) == [
        (
            None,
            (
                "env keys FASTMCP_LOG_LEVEL, NEPTUNE_ENDPOINT not passed to the container: the docker "
                'CLI only forwards env-block keys named by a bare -e KEY; add "-e", "KEY" to args '
                "for each key the server needs"
            ),
        )
    ]


def test_env_block_key_shadowed_by_a_literal_is_warned_about():
    result = parse(["-e", "KEY=literal", IMG], env={"KEY": "block"})
    assert env_of(result.spec) == [("KEY", "literal")]
    assert warnings_of(result) == [("-e", "env key KEY is set by -e KEY=… in args, so its env-block value is not used")]


def test_env_block_key_used_by_an_env_file_is_not_warned_about(tmp_path):
    f = tmp_path / "x.env"
    f.write_text("TOKEN\n")
    result = parse(["--env-file", str(f), IMG], env={"TOKEN": "t"})
    assert result.spec is not None and not warnings_of(result)


# --- labels ---------------------------------------------------------------------------


def test_labels_from_file_then_flags(tmp_path):
    f = tmp_path / "labels"
    f.write_text("a=file\nb=file\nbare\n")
    result = parse(["-l", "a=flag", "--label-file", str(f), "--label", "c", "-l", "d=", "-l", "e=x=y", IMG])
    assert result.spec is not None
    assert dict(result.spec.labels) == {"a": "flag", "b": "file", "c": "", "d": "", "e": "x=y"}
    assert warnings_of(result) == [
        (
            "--label-file",
            f"{f} line 3: 'bare' has no '=' and is ignored, as the docker CLI does; write bare= for an empty label",
        )
    ]


# --- volumes, mounts, tmpfs ----------------------------------------------------------------


def test_volume_kinds(tmp_path):
    spec = spec_of(
        "-v",
        f"{tmp_path}:/data",
        "-v",
        f"{tmp_path}:/ro:ro",
        "-v",
        f"{tmp_path}:/rw:rw",
        "-v",
        "claude-memory:/app/dist",
        "-v",
        "vol_1.x:/v:ro",
        "--volume",
        "/anonymous",
        "-v",
        "/anonymous",
        IMG,
    )
    assert spec.volumes == (
        VolumeSpec(f"{tmp_path}:/data", "bind", str(tmp_path), "/data"),
        VolumeSpec(f"{tmp_path}:/ro:ro", "bind", str(tmp_path), "/ro", True),
        VolumeSpec(f"{tmp_path}:/rw:rw", "bind", str(tmp_path), "/rw"),
        VolumeSpec("claude-memory:/app/dist", "volume", "claude-memory", "/app/dist"),
        VolumeSpec("vol_1.x:/v:ro", "volume", "vol_1.x", "/v", True),
        VolumeSpec("/anonymous", "anonymous", "", "/anonymous"),  # an exact repeat is one
    )


def test_missing_bind_source_is_a_warning():
    result = parse(["-v", "/full/path/to/.aws:/app/.aws", "--mount", "type=bind,src=/Users/username,dst=/u", IMG])
    assert result.spec is not None
    assert warnings_of(result) == [
        (
            "-v",
            "'/full/path/to/.aws:/app/.aws': the host path /full/path/to/.aws does not "
            "exist; Docker will create it as an empty directory owned by root",
        ),
        (
            "--mount",
            "'type=bind,src=/Users/username,dst=/u': the host path /Users/username "
            "does not exist; Docker refuses to create the container until it does",
        ),
    ]


def test_mount_forms(tmp_path):
    src = str(tmp_path)
    spec = spec_of(
        "--mount",
        f"type=bind,src={src},dst=/a",
        "--mount",
        f"type=bind,source={src},destination=/b,ro",
        "--mount",
        f"type=bind,src={src},target=/c,readonly=false,bind-propagation=rslave",
        "--mount",
        f"type=bind,src={src},dst=/d,readonly=true,bind-nonrecursive",
        "--mount",
        "type=volume,source=data,target=/e,volume-nocopy,volume-opt=o=addr,volume-label=k=v",
        "--mount",
        "source=data2,target=/f",  # type defaults to volume
        "--mount",
        "type=volume,dst=/g",  # anonymous
        "--mount",
        "type=volume,src=remote/x,dst=/h,volume-driver=rexray",
        "--mount",
        "type=tmpfs,dst=/i,tmpfs-size=64m,tmpfs-mode=1770",
        "--mount",
        "type=TMPFS,dst=/j,consistency=cached",
        "--mount",
        "type=volume,dst=/k,volume-nocopy=false",
        IMG,
    )
    assert spec.mounts == (
        MountSpec("bind", "/a", src),
        MountSpec("bind", "/b", src, read_only=True),
        MountSpec("bind", "/c", src, bind_propagation="rslave"),
        MountSpec("bind", "/d", src, read_only=True, bind_nonrecursive=True),
        MountSpec(
            "volume", "/e", "data", volume_nocopy=True, volume_options=(("o", "addr"),), volume_labels=(("k", "v"),)
        ),
        MountSpec("volume", "/f", "data2"),
        MountSpec("volume", "/g"),
        MountSpec("volume", "/h", "remote/x", volume_driver="rexray"),
        MountSpec("tmpfs", "/i", tmpfs_size=64 << 20, tmpfs_mode=0o1770),
        MountSpec("tmpfs", "/j", consistency="cached"),
        MountSpec("volume", "/k", volume_nocopy=False),
    )
    # What the docker CLI sends for them (an options block as soon as a key is written).
    api = create_kwargs(spec)["mounts"]
    assert api[2] == {"Type": "bind", "Target": "/c", "Source": src, "BindOptions": {"Propagation": "rslave"}}
    assert api[3]["BindOptions"] == {"NonRecursive": True} and api[3]["ReadOnly"] is True
    assert api[4]["VolumeOptions"] == {"NoCopy": True, "Labels": {"k": "v"}, "DriverConfig": {"Options": {"o": "addr"}}}
    assert api[6] == {"Type": "volume", "Target": "/g"}
    assert api[8]["TmpfsOptions"] == {"SizeBytes": 64 << 20, "Mode": 0o1770}
    assert api[10]["VolumeOptions"] == {"DriverConfig": {}}


def test_tmpfs_map_semantics():
    spec = spec_of("--tmpfs", "/run", "--tmpfs", "/cache:rw,size=16m", "--tmpfs", "/run:size=1m", IMG)
    assert spec.tmpfs == (("/run", "size=1m"), ("/cache", "rw,size=16m"))


# --- ports and network ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("8080:80", [PortBinding(80, "tcp", "", "8080")]),
        ("80", [PortBinding(80)]),
        ("127.0.0.1:8080:80/udp", [PortBinding(80, "udp", "127.0.0.1", "8080")]),
        ("127.0.0.1::80", [PortBinding(80, "tcp", "127.0.0.1", "")]),
        ("[::1]:8080:80", [PortBinding(80, "tcp", "::1", "8080")]),
        ("8000-8001:80-81", [PortBinding(80, "tcp", "", "8000"), PortBinding(81, "tcp", "", "8001")]),
        ("8000-8010:80", [PortBinding(80, "tcp", "", "8000-8010")]),
        ("80-81/sctp", [PortBinding(80, "sctp"), PortBinding(81, "sctp")]),
        ("published=8080,target=80", [PortBinding(80, "tcp", "", "8080")]),
        ("published=53,target=53,protocol=udp", [PortBinding(53, "udp", "", "53")]),
    ],
)
def test_publish_forms(value, expected):
    assert list(spec_of("-p", value, IMG).ports) == expected
    assert list(spec_of(f"--publish={value}", IMG).ports) == expected


def test_expose_and_published_ports_in_kwargs():
    spec = spec_of("-p", "8080:80", "-p", "9090:80", "--expose", "90", "--expose", "100-101/udp", "--expose", "90", IMG)
    assert spec.exposed == ("90/tcp", "100/udp", "101/udp")
    assert create_kwargs(spec)["ports"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "9090"}],
        "90/tcp": [],
        "100/udp": [],
        "101/udp": [],
    }


def test_hosts_and_dns():
    spec = spec_of(
        "--add-host",
        "db:10.0.0.5",
        "--add-host",
        "cache=10.0.0.6",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "h6=::1",
        "--add-host",
        "h7:[::2]",
        "--dns",
        "8.8.8.8",
        "--dns",
        "::ffff:1.2.3.4",
        "--dns",
        " 2001:DB8::1 ",
        "--dns-search",
        "example.com.",
        "--dns-search",
        ".",
        "--dns-option",
        "ndots:2",
        "--dns-opt",
        "use-vc",
        IMG,
    )
    assert spec.extra_hosts == ("db:10.0.0.5", "cache:10.0.0.6", "gw:host-gateway", "h6:::1", "h7:::2")
    assert spec.dns == ("8.8.8.8", "1.2.3.4", "2001:db8::1")
    assert spec.dns_search == ("example.com", ".")
    assert spec.dns_options == ("ndots:2", "use-vc")


# --- security, devices, resources ---------------------------------------------------------


def test_capabilities_normalised_like_the_cli():
    spec = spec_of(
        "--cap-add",
        "net_admin",
        "--cap-add",
        "CAP_SYS_TIME",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "all",
        "--cap-drop",
        "chown",
        "--cap-drop",
        "mknod",
        IMG,
    )
    assert spec.cap_add == ("ALL", "CAP_NET_ADMIN", "CAP_SYS_TIME")
    assert spec.cap_drop == ("CAP_CHOWN", "CAP_MKNOD")


def test_security_opts_and_seccomp_profile_inlined():
    spec = spec_of(
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "label:disable",
        "--security-opt",
        "seccomp=parity/seccomp-profile.json",
        "--security-opt",
        "seccomp=unconfined",
        IMG,
        base_dir=HERE,
    )
    profile = json.loads((DATA / "seccomp-profile.json").read_text())
    inlined = spec.security_opt[3]
    assert inlined.startswith("seccomp={") and " " not in inlined.split('"comment"')[0]
    assert json.loads(inlined[len("seccomp=") :]) == profile
    assert '"spaces inside strings stay: a b"' in inlined  # only whitespace outside strings goes
    assert spec.security_opt[:3] == ("no-new-privileges", "apparmor=unconfined", "label:disable")
    assert spec.security_opt[4] == "seccomp=unconfined"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/dev/fuse", DeviceMapping("/dev/fuse", "/dev/fuse", "rwm")),
        ("/dev/fuse:r", DeviceMapping("/dev/fuse", "/dev/fuse", "r")),
        ("/dev/sda:/dev/xvdc", DeviceMapping("/dev/sda", "/dev/xvdc", "rwm")),
        ("/dev/sda:/dev/xvdc:rw", DeviceMapping("/dev/sda", "/dev/xvdc", "rw")),
        ("/dev/null/", DeviceMapping("/dev/null", "/dev/null", "rwm")),
    ],
)
def test_devices(value, expected):
    assert spec_of("--device", value, IMG).devices == (expected,)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("all", GpuRequest(-1)),
        ("2", GpuRequest(2)),
        ('"device=0,1"', GpuRequest(0, device_ids=("0", "1"))),
        ("driver=nvidia,count=1", GpuRequest(1, driver="nvidia")),
        ('"capabilities=compute,utility",count=all', GpuRequest(-1, capabilities=(("compute", "utility", "gpu"),))),
        ('all,"options=a=1,b"', GpuRequest(-1, options=(("a", "1"), ("b", "")))),
    ],
)
def test_gpus(value, expected):
    assert spec_of("--gpus", value, IMG).gpus == (expected,)


@pytest.mark.parametrize(
    "flag, value, field, expected",
    [
        ("-m", "64m", "memory", 64 << 20),
        ("--memory", "1g", "memory", 1 << 30),
        ("--memory", "1.5g", "memory", int(1.5 * (1 << 30))),
        ("--memory", "6291456", "memory", 6 << 20),
        ("--memory", "6144k", "memory", 6 << 20),
        ("--memory", "6144KiB", "memory", 6 << 20),
        ("--memory", "8 MB", "memory", 8 << 20),
        ("--shm-size", "512", "shm_size", 512),
        ("--shm-size", "512b", "shm_size", 512),
        ("--shm-size", "1.5k", "shm_size", 1536),
        ("--shm-size", "2T", "shm_size", 2 << 40),
        ("--memory-reservation", "32m", "memory_reservation", 32 << 20),
        ("--cpus", "1.5", "nano_cpus", 1_500_000_000),
        ("--cpus", "0.001", "nano_cpus", 1_000_000),
        ("--cpus", "3/2", "nano_cpus", 1_500_000_000),
        ("--cpus", "1e-3", "nano_cpus", 1_000_000),
        ("--cpus", "2", "nano_cpus", 2_000_000_000),
    ],
)
def test_units(flag, value, field, expected):
    assert getattr(spec_of(flag, value, IMG), field) == expected


def test_memory_swap_forms():
    assert spec_of("-m", "64m", "--memory-swap", "-1", IMG).memory_swap == -1
    assert spec_of("-m", "64m", "--memory-swap=128m", IMG).memory_swap == 128 << 20


def test_ulimits_sysctls_logging():
    spec = spec_of(
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "nproc=100",
        "--ulimit",
        "nofile=4096",
        "--ulimit",
        "core=-1:-1",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmax=1",
        "--sysctl",
        "fs.mqueue.msg_max=20",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=2",
        "--log-opt",
        "max-size=2m",
        IMG,
    )
    assert spec.ulimits == (Ulimit("nofile", 4096, 4096), Ulimit("nproc", 100, 100), Ulimit("core", -1, -1))
    assert spec.sysctls == (("net.ipv4.ip_forward", "1"), ("kernel.shmmax", "1"), ("fs.mqueue.msg_max", "20"))
    assert spec.log_options == (("max-size", "2m"), ("max-file", "2"))
    assert create_kwargs(spec)["log_config"] == {"Type": "json-file", "Config": {"max-size": "2m", "max-file": "2"}}


# --- image references -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "mcp/fetch",
        "mcp/time:latest",
        "hashicorp/terraform-mcp-server:0.4.0",
        "busybox",
        "registry:5000/a/b:tag",
        "localhost:5000/team/server:1.0",
        "localhost/x",
        "ghcr.io/github/github-mcp-server",
        "ghcr.io/org/server:1.2.3-rc.1",
        "mcr.microsoft.com/playwright/mcp",
        "public.ecr.aws/awslabs-mcp/awslabs/aws-api-mcp-server:latest",
        "mcp/time@sha256:" + "a" * 64,
        "mcp/time:1.0@sha256:" + "0123456789abcdef" * 4,
        "Registry.Example.com/team/x",
        "[::1]:5000/x:y",
        "a__b/c--d/e.f",
        "x" * 40 + ":" + "T" * 128,
        "16df3771d09f0e381aa0246ebdf17ee92183b31f43410a7f2060416b0a6af4b7",
        "sha256:16df3771d09f0e381aa0246ebdf17ee92183b31f43410a7f2060416b0a6af4b7",
    ],
)
def test_valid_image_references_are_kept_as_written(image):
    assert spec_of("-i", image).image == image


@pytest.mark.parametrize(
    "image, phrase",
    [
        ("Bad/Name", "invalid image reference 'Bad/Name': repository names must be lowercase"),
        ("mcp/Time", "repository names must be lowercase"),
        ("mcp/time:", "invalid image reference 'mcp/time:' (expected NAME[:TAG][@DIGEST]"),
        ("mcp//time", "invalid image reference 'mcp//time'"),
        ("mcp/time@sha256:abc", "invalid image reference 'mcp/time@sha256:abc'"),
        ("mcp/time:" + "t" * 129, "invalid image reference"),
        (" mcp/time", "invalid image reference ' mcp/time'"),
        ("mcp/time:la test", "invalid image reference"),
        ("-", "invalid image reference '-'"),
        ("a" * 256, "the name is longer than 255 characters"),
    ],
)
def test_invalid_image_references(image, phrase):
    result = parse(["-i", image])
    assert result.spec is None
    [(flag, message)] = errors_of(result)
    assert flag is None and phrase in message


# --- every error message ---------------------------------------------------------------------

ERRORS = [
    # flags
    (["--foo", IMG], "--foo", "unknown docker run flag --foo"),
    (["--foo=1", IMG], "--foo", "unknown docker run flag --foo"),
    (["-x", IMG], "-x", "unknown docker run flag -x"),
    (["-ix", IMG], "-x", "unknown docker run flag -x (in -ix)"),
    (["-xeTOKEN=1", IMG], "-x", "unknown docker run flag -x (in -x…)"),
    (["-e"], "-e", "flag needs an argument: -e"),
    (["-i", "--env"], "--env", "flag needs an argument: --env"),
    (["--rm=maybe", IMG], "--rm", "--rm: 'maybe' is not a boolean (true or false)"),
    (["-i=yes", IMG], "-i", "-i: 'yes' is not a boolean (true or false)"),
    (
        ["--cidfile", "/tmp/id", IMG],
        "--cidfile",
        "docker run flag --cidfile is not supported by "
        "the orchestrator: it writes the container ID to a file on the host; the orchestrator "
        "finds its containers by label",
    ),
    (
        ["-P", IMG],
        "-P",
        "docker run flag -P is not supported by the orchestrator: it publishes "
        "every exposed port on a random host port, outside the orchestrator's port range; use -p",
    ),
    (["--publish-all", IMG], "--publish-all", "not supported by the orchestrator"),
    (["-a", "stdin", IMG], "-a", "the orchestrator attaches to the container's stdin and stdout itself"),
    (["--use-api-socket", IMG], "--use-api-socket", "control of the Docker engine"),
    (["--volumes-from", "other", IMG], "--volumes-from", "copies the mounts of another container"),
    (["--link", "db:db", IMG], "--link", "network endpoint settings"),
    (["--ip", "10.0.0.9", IMG], "--ip", "network endpoint settings"),
    (["--network-alias", "x", IMG], "--network-alias", "network endpoint settings"),
    (["--health-cmd", "true", IMG], "--health-cmd", "through its MCP bridge"),
    (["--volume-driver", "x", IMG], "--volume-driver", "use --mount type=volume,volume-driver"),
    (["--storage-opt", "size=1G", IMG], "--storage-opt", "host's storage driver"),
    (["--isolation", "hyperv", IMG], "--isolation", "Windows containers only"),
    (["--kernel-memory", "1g", IMG], "--kernel-memory", "deprecated"),
    (["--cgroup-parent", "x", IMG], "--cgroup-parent", "default cgroup"),
    (["--device-read-bps", "/dev/sda:1mb", IMG], "--device-read-bps", "block-I/O limits"),
    (["--help", IMG], "--help", "not a container setting"),
    # image
    ([], None, "no image: docker run needs an image after its flags"),
    (["-i", "--rm"], None, "no image: docker run needs an image after its flags"),
    (["--"], None, "no image"),
    # env
    (["-e", "=x", IMG], "-e", "-e =…: no variable name before '='"),
    (["-e", "A B=1", IMG], "-e", "-e A …: a variable name cannot contain whitespace"),
    (["-e", "TOKEN value", IMG], "-e", "-e TOKEN …: a variable name cannot contain whitespace (write NAME=VALUE)"),
    (["-e", "X", IMG], "-e", "-e X: no value for X in the server's env block or the orchestrator's environment"),
    (["--env", "X", IMG], "--env", "--env X: no value for X"),
    (
        ["-e", "GITHUB_TOKEN=${input:github_token}", IMG],
        "-e",
        "-e GITHUB_TOKEN=…: the value "
        "is a VS Code input variable (${input:…}), which only a VS Code client fills in; put the "
        'value in the server\'s "env" block and pass it with "-e", "GITHUB_TOKEN"',
    ),
    (["-e", "${input:name}", IMG], "-e", "-e ${input:name}: a VS Code input variable (${input:…}) as the name"),
    (
        ["--env-file", "/nonexistent/.env", IMG],
        "--env-file",
        "--env-file: /nonexistent/.env: file not found (/nonexistent/.env)",
    ),
    (
        ["--env-file", "missing.env", IMG],
        "--env-file",
        f"--env-file: missing.env: file not found ({HERE / 'missing.env'})",
    ),
    (["--env-file", "parity", IMG], "--env-file", "parity: is a directory, not a file"),
    (
        ["--env-file", "~/.env", IMG],
        "--env-file",
        "--env-file: ~/.env: '~' is not expanded: no shell runs these args; write an absolute path",
    ),
    (["--env-file", "${HOME}/.env", IMG], "--env-file", "'${HOME}' is not expanded"),
    (["--env-file", "$HOME/.env", IMG], "--env-file", "'$HOME' is not expanded"),
    (
        ["--env-file", "${input:envfile}", IMG],
        "--env-file",
        "--env-file ${input:envfile}: "
        "${input:…} is a VS Code input variable that only a VS Code client fills in; write the "
        "value itself",
    ),
    # labels
    (["-l", "=x", IMG], "-l", "-l: '=x' has no label name before '='"),
    (["--label", "a b=1", IMG], "--label", "the label name 'a b' contains whitespace"),
    (["--label-file", "/nonexistent/labels", IMG], "--label-file", "file not found"),
    # -v
    (["-v", "", IMG], "-v", "-v: the volume spec is empty"),
    (["-v", "/a::/b", IMG], "-v", "-v: '/a::/b': empty section between colons"),
    (["-v", "/a:/b:ro:x", IMG], "-v", "too many colons (expected [SOURCE:]TARGET[:OPTIONS])"),
    (["-v", "/a:b", IMG], "-v", "-v: '/a:b': the container path 'b' must be absolute"),
    (["-v", "/anon:ro", IMG], "-v", "the container path 'ro' must be absolute"),
    (["-v", "/a:/", IMG], "-v", "the container path cannot be '/'"),
    (
        ["-v", "/tmp:/x:Z", IMG],
        "-v",
        "SELinux relabelling ('Z') is not supported by the "
        "orchestrator; label the host path yourself (chcon -Rt container_file_t PATH)",
    ),
    (["-v", "/tmp:/x:ro,z", IMG], "-v", "SELinux relabelling ('z')"),
    (["-v", "/tmp:/x:rshared", IMG], "-v", "use --mount type=bind,src=SOURCE,dst=TARGET,bind-propagation=rshared"),
    (["-v", "data:/x:nocopy", IMG], "-v", "volume-nocopy"),
    (["-v", "/tmp:/x:rx", IMG], "-v", "unknown volume option 'rx' (use ro or rw)"),
    (
        ["-v", "~/.aws:/root/.aws", IMG],
        "-v",
        "-v: '~/.aws:/root/.aws': '~' is not expanded: no shell runs these args; write an absolute path",
    ),
    (["-v", "${HOME}/.aws:/root/.aws:ro", IMG], "-v", "'${HOME}' is not expanded"),
    (["-v", "$PWD/data:/data", IMG], "-v", "'$PWD' is not expanded"),
    (
        ["-v", "./data:/data", IMG],
        "-v",
        "the host path './data' is relative; the docker CLI "
        "resolves it against its own working directory, which an MCP client does not define",
    ),
    (["-v", "..:/data", IMG], "-v", "is relative"),
    (
        ["-v", "data/sub:/data", IMG],
        "-v",
        "'data/sub' is not a valid volume name (letters, "
        "digits, '_', '.', '-'); to mount a host directory write an absolute path",
    ),
    (["-v", "a:/data", IMG], "-v", "'a' is not a valid volume name"),
    (
        ["-v", "/tmp:/d", "--mount", "type=volume,dst=/d/", IMG],
        "--mount",
        "two mounts at /d (-v /tmp:/d and --mount target=/d/); Docker refuses duplicate mount points",
    ),
    # --mount
    (
        ["--mount", "type=bind,src=/tmp", IMG],
        "--mount",
        "'type=bind,src=/tmp': target is required (target=/path/in/container)",
    ),
    (["--mount", "type=bind,src=/tmp,dst=rel", IMG], "--mount", "the target 'rel' must be an absolute path"),
    (["--mount", "type=bind,dst=/x", IMG], "--mount", "a bind mount needs source=/absolute/host/path"),
    (["--mount", "type=bind,src=./x,dst=/x", IMG], "--mount", "the source './x' must be an absolute host path"),
    (["--mount", "type=bind,src=~/x,dst=/x", IMG], "--mount", "'~' is not expanded"),
    (["--mount", "type=bind,src=${HOME},dst=/x", IMG], "--mount", "'${HOME}' is not expanded"),
    (["--mount", "type=bind,src=/tmp,dst=/x,foo=1", IMG], "--mount", "unexpected key 'foo' in 'foo=1'"),
    (["--mount", "type=bind,src=/tmp,dst=/x,readonly=maybe", IMG], "--mount", "invalid value for readonly: 'maybe'"),
    (["--mount", "type=bind,src=/tmp,dst=/x,rw", IMG], "--mount", "invalid field 'rw': must be a key=value pair"),
    (["--mount", "type=bind,src=/tmp,dst=/x,bind-propagation=up", IMG], "--mount", "invalid bind-propagation 'up'"),
    (
        ["--mount", "type=bind,src=/tmp,dst=/x,volume-opt=a=b", IMG],
        "--mount",
        "cannot mix 'volume-*' options with mount type 'bind'",
    ),
    (
        ["--mount", "type=volume,dst=/x,bind-propagation=rslave", IMG],
        "--mount",
        "cannot mix 'bind-*' options with mount type 'volume'",
    ),
    (
        ["--mount", "type=bind,src=/tmp,dst=/x,tmpfs-size=1m", IMG],
        "--mount",
        "cannot mix 'tmpfs-*' options with mount type 'bind'",
    ),
    (["--mount", "type=tmpfs,src=/tmp,dst=/x", IMG], "--mount", "a tmpfs mount takes no source"),
    (
        ["--mount", "type=npipe,src=x,dst=/x", IMG],
        "--mount",
        "mount type 'npipe' is not supported (bind, volume or tmpfs)",
    ),
    (
        ["--mount", "type=tmpfs,dst=/x,tmpfs-mode=999", IMG],
        "--mount",
        "invalid value for tmpfs-mode: '999' (octal, for example 1770)",
    ),
    (["--mount", "type=tmpfs,dst=/x,tmpfs-size=big", IMG], "--mount", "invalid value for tmpfs-size: 'big'"),
    (["--mount", "type=volume,src=a/b,dst=/x", IMG], "--mount", "'a/b' is not a valid volume name"),
    (["--mount", "type=volume,dst=/x,volume-driver=", IMG], "--mount", "volume-driver needs a driver name"),
    (["--mount", "type=volume,dst=/x,volume-opt==b", IMG], "--mount", "volume-opt needs NAME=VALUE"),
    (["--mount", 'type=bind,src="/tmp,dst=/x', IMG], "--mount", "--mount: 'type=bind,src=\"/tmp"),
    (["--tmpfs", "run", IMG], "--tmpfs", "--tmpfs: 'run': the container path 'run' must be absolute"),
    # ports
    (["-p", "8080:80/http", IMG], "-p", "unknown protocol 'http' (tcp, udp or sctp)"),
    (["-p", "1.2.3:8080:80", IMG], "-p", "invalid host IP '1.2.3'"),
    (["-p", "8080:", IMG], "-p", "'8080:': no container port"),
    (["-p", "0", IMG], "-p", "the container port cannot be 0"),
    (["-p", "70000", IMG], "-p", "invalid container port in '70000'"),
    (["-p", "8000-8002:80-81", IMG], "-p", "the host and container port ranges differ in size"),
    (["-p", "x:80", IMG], "-p", "invalid host port in 'x:80'"),
    (["-p", "published=8080", IMG], "-p", "no container port"),
    (["-p", "published=8080,bogus", IMG], "-p", "expected name=value, got 'bogus'"),
    (
        ["--expose", "8080:80", IMG],
        "--expose",
        "--expose takes PORT[/PROTOCOL] or a range, not a mapping (use -p to publish)",
    ),
    (["--expose", "90/ftp", IMG], "--expose", "unknown protocol 'ftp'"),
    # network
    (["--add-host", "db", IMG], "--add-host", "'db': expected HOST:IP or HOST=IP"),
    (["--add-host", "db:example.com", IMG], "--add-host", "'example.com' is not an IP address (or host-gateway)"),
    (["--dns", "dns.google", IMG], "--dns", "--dns: 'dns.google' is not an IP address"),
    (["--dns-search", "-bad-.com", IMG], "--dns-search", "is not a valid domain"),
    (
        ["--network", "name=x,alias=y", IMG],
        "--network",
        "the advanced --network syntax (name=...,alias=...) is not supported by the orchestrator; write --network NAME",
    ),
    (["--network", "a", "--net", "b", IMG], "--network", "only one --network is supported"),
    (["--network", " ", IMG], "--network", "no network name"),
    # security
    (["--cap-add", "net admin", IMG], "--cap-add", "'net admin' is not a capability name (for example NET_ADMIN)"),
    (
        ["--security-opt", "seccomp", IMG],
        "--security-opt",
        "invalid --security-opt 'seccomp' (expected KEY=VALUE or no-new-privileges)",
    ),
    (
        ["--security-opt", "systempaths=unconfined", IMG],
        "--security-opt",
        "systempaths=unconfined is not supported by the orchestrator",
    ),
    (
        ["--security-opt", "seccomp=/nonexistent.json", IMG],
        "--security-opt",
        "cannot read the seccomp profile /nonexistent.json",
    ),
    (
        ["--security-opt", "seccomp=parity/labels.txt", IMG],
        "--security-opt",
        "the seccomp profile parity/labels.txt is not valid JSON",
    ),
    (["--security-opt", "seccomp=~/p.json", IMG], "--security-opt", "'~' is not expanded"),
    (["--device", "/dev/sda:/dev/xvdc:rwx", IMG], "--device", "bad permissions 'rwx'"),
    (["--device", "dev/sda", IMG], "--device", "the host device path must be absolute"),
    (["--device", "/dev/sd*", IMG], "--device", "device globs are not supported"),
    (["--device", "/dev/a:/b:r:x", IMG], "--device", "expected HOST_PATH[:CONTAINER_PATH]"),
    (["--device", "/dev/a:b", IMG], "--device", "b is not an absolute path"),
    (["--gpus", "many", IMG], "--gpus", "count must be an integer or all"),
    (["--gpus", "speed=fast", IMG], "--gpus", "unexpected key 'speed'"),
    (["--gpus", "count=1,count=2", IMG], "--gpus", "gpu request key 'count' can be specified only once"),
    (["--group-add", "", IMG], "--group-add", "the group is empty"),
    (["--sysctl", "kernel.hostname=x", IMG], "--sysctl", "sysctl 'kernel.hostname' is not allowed in a container"),
    (["--sysctl", "net.x", IMG], "--sysctl", "'net.x': expected NAME=VALUE"),
    (["--ulimit", "files=1", IMG], "--ulimit", "unknown ulimit 'files'"),
    (["--ulimit", "nofile", IMG], "--ulimit", "'nofile': expected NAME=SOFT[:HARD]"),
    (["--ulimit", "nofile=2:1", IMG], "--ulimit", "the soft limit 2 is above the hard limit 1"),
    (["--ulimit", "nofile=1:2:3", IMG], "--ulimit", "expected NAME=SOFT[:HARD]"),
    (["--ulimit", "nofile=x", IMG], "--ulimit", "'x' is not an integer limit"),
    (["--ipc", "weird", IMG], "--ipc", "invalid mode 'weird' (one of none, private, shareable, host, container:NAME)"),
    (["--pid", "container:", IMG], "--pid", "invalid mode 'container:'"),
    (["--uts", "container:x", IMG], "--uts", "invalid mode 'container:x' (one of host)"),
    (["--userns", "private", IMG], "--userns", "invalid mode 'private'"),
    (["--cgroupns", "shared", IMG], "--cgroupns", "invalid mode 'shared'"),
    # lifecycle
    (["--name", "x", IMG], "--name", "invalid container name 'x'"),
    (["--name", "my server", IMG], "--name", "invalid container name 'my server'"),
    (["-w", "srv", IMG], "-w", "the working directory 'srv' must be an absolute path"),
    (
        ["--restart", "sometimes", IMG],
        "--restart",
        "unknown restart policy (no, always, unless-stopped, on-failure[:N])",
    ),
    (["--restart", "always:3", IMG], "--restart", "a retry count only goes with on-failure"),
    (["--restart", "on-failure:x", IMG], "--restart", "'x' is not an integer retry count"),
    (["--restart", ":3", IMG], "--restart", "no policy before ':'"),
    (["--restart", "on-failure:-1", IMG], "--restart", "the retry count cannot be negative"),
    (
        ["--rm", "--restart", "always", IMG],
        "--restart",
        "conflicting options: --restart and --rm (docker refuses both)",
    ),
    (["--pull", "sometimes", IMG], "--pull", "invalid pull option 'sometimes' (always, missing or never)"),
    (["--platform", "linux amd64", IMG], "--platform", "is not a platform"),
    (["--stop-signal", "sigterm!", IMG], "--stop-signal", "is not a signal"),
    (["--stop-timeout", "10s", IMG], "--stop-timeout", "'10s' is not an integer"),
    (["--log-opt", "=x", IMG], "--log-opt", "'=x': expected NAME=VALUE"),
    (["--log-driver", "none", "--log-opt", "a=b", IMG], "--log-opt", "--log-opt does not apply to --log-driver none"),
    # resources
    (["-m", "lots", IMG], "-m", "-m: 'lots' is not a size (for example 512m or 2g)"),
    (["-m", "1m", IMG], "--memory", "the memory limit must be at least 6MB"),
    (["--memory-swap", "1g", IMG], "--memory-swap", "--memory-swap needs a --memory limit too"),
    (["-m", "1g", "--memory-swap", "512m", IMG], "--memory-swap", "cannot be below --memory"),
    (
        ["-m", "64m", "--memory-reservation", "128m", IMG],
        "--memory-reservation",
        "--memory-reservation must be below --memory",
    ),
    (["--memory-swappiness", "101", IMG], "--memory-swappiness", "101 is out of range (0 to 100)"),
    (["--oom-score-adj", "2000", IMG], "--oom-score-adj", "out of range (-1000 to 1000)"),
    (["--cpus", "0", IMG], "--cpus", "'0' must be more than 0"),
    (["--cpus", "0.0000000001", IMG], "--cpus", "is too precise (at most 9 decimals)"),
    (["--cpus", "two", IMG], "--cpus", "'two' is not a number of CPUs"),
    (["--cpus", "1", "--cpu-quota", "50000", IMG], "--cpus", "--cpus conflicts with --cpu-period/--cpu-quota"),
    (["--cpuset-cpus", "0-", IMG], "--cpuset-cpus", "is not a list of CPUs or memory nodes"),
    (["--cpu-shares", "-1", IMG], "--cpu-shares", "-1 is out of range"),
    # placeholders and one-element mistakes
    (["--name", "${input:name}", IMG], "--name", "--name ${input:name}: ${input:…} is a VS Code input variable"),
    (["-i", "${input:image}"], None, "the image '${input:image}' holds a VS Code input variable"),
    (
        ["-i", IMG, "--token", "${input:token}"],
        None,
        "the command argument '${input:token}' "
        "holds a VS Code input variable (${input:…}) that only a VS Code client fills in",
    ),
    (
        ["-v /tmp:/tmp", IMG],
        "-v",
        '"-v /tmp:/tmp" is a flag and its value in one array '
        "element. No shell splits these args, so docker would read the value with a leading "
        'space; write them as two elements: "-v", "/tmp:/tmp"',
    ),
    (["--name my-server", IMG], "--name", 'write them as two elements: "--name", "my-server"'),
    (["-e AWS_PROFILE=dev", IMG], "-e", '"-e AWS_PROFILE=…" is a flag and its value in one array element'),
    (["-it --rm", IMG], "-it", 'write them as two elements: "-it", "--rm"'),
]


@pytest.mark.parametrize(
    "args, flag, phrase", ERRORS, ids=[f"{i}:{' '.join(a)[:40]}" for i, (a, _, _) in enumerate(ERRORS)]
)
def test_error_messages(args, flag, phrase):
    result = parse(args)
    assert result.spec is None
    matching = [(f, m) for f, m in errors_of(result) if phrase in m]
    assert matching, f"no error with {phrase!r} in {errors_of(result)}"
    assert matching[0][0] == flag


def test_input_placeholder_in_the_env_block():
    result = parse(["-e", "TOKEN", IMG], env={"TOKEN": "${input:token}"})
    assert errors_of(result) == [
        (
            "-e",
            "-e TOKEN: the value of TOKEN in the server's env "
            "block is a VS Code input variable (${input:…}), which "
            "only a VS Code client fills in; put the real value "
            "there",
        )
    ]


def test_split_element_reports_the_rest_as_well():
    result = parse(
        [
            "--rm",
            "--interactive",
            "-v ~/.aws:/root/.aws",
            "-e AWS_PROFILE=[The AWS Profile Name to use for AWS access]",
            "awslabs/cloudtrail-mcp-server:latest",
        ]
    )
    assert [m for _, m in errors_of(result)] == [
        '"-v ~/.aws:/root/.aws" is a flag and its value in one array element. No shell splits '
        "these args, so docker would read the value with a leading space; write them as two "
        'elements: "-v", "~/.aws:/root/.aws"',
        '"-e AWS_PROFILE=…" is a flag and its value in one array element. No shell splits '
        "these args, so docker would read the value with a leading space; write them as two "
        'elements: "-e", "AWS_PROFILE=…"',
        "-v: '~/.aws:/root/.aws': '~' is not expanded: no shell runs these args; write an absolute path",
    ]


def test_an_unknown_flag_stops_parsing_like_docker():
    # Its arity is unknown, so what follows cannot be told apart from the image.
    result = parse(["--frobnicate", "x", "-e", "MISSING", IMG])
    assert errors_of(result) == [("--frobnicate", "unknown docker run flag --frobnicate")]


@pytest.mark.parametrize(
    "args, flag, message",
    [
        (["-q", IMG], "-q", "-q has no effect here: it only silences pull progress"),
        (["--quiet", IMG], "--quiet", "--quiet has no effect here: it only silences pull progress"),
        (
            ["--sig-proxy=false", IMG],
            "--sig-proxy",
            "--sig-proxy has no effect here: it only "
            "affects an attached docker CLI; the orchestrator attaches to the container itself",
        ),
        (["--detach-keys", "ctrl-x", IMG], "--detach-keys", "--detach-keys has no effect here"),
        (
            ["--disable-content-trust", IMG],
            "--disable-content-trust",
            "content trust is a docker CLI feature for pulls",
        ),
    ],
)
def test_flags_without_effect_are_info(args, flag, message):
    result = parse(args)
    assert result.spec is not None
    [issue] = result.issues
    assert (issue.severity, issue.flag) == ("info", flag) and message in issue.message


def test_every_flag_has_a_handler_or_a_reason():
    for name, flag in BY_NAME.items():
        assert flag.unsupported or flag.no_effect or flag.handler is not None, name
    assert BY_SHORT.keys() == set("acdehilmpPqtuvw")
    assert len({f.name for f in FLAGS}) == len(FLAGS)  # no entry hides another
    assert len([f for f in FLAGS if f.short]) == len(BY_SHORT)
    with pytest.raises(ValueError):
        Flag("x", None, True)  # neither a handler nor a reason


def test_the_docker_cli_flag_list_is_covered():
    """Every flag of `docker run --help` (CLI 28) is known: supported, or refused with a
    reason, never 'unknown'."""
    cli_flags = """add-host annotation attach blkio-weight blkio-weight-device cap-add cap-drop
        cgroup-parent cgroupns cidfile cpu-period cpu-quota cpu-rt-period cpu-rt-runtime
        cpu-shares cpus cpuset-cpus cpuset-mems detach detach-keys device device-cgroup-rule
        device-read-bps device-read-iops device-write-bps device-write-iops
        disable-content-trust dns dns-option dns-search domainname entrypoint env env-file
        expose gpus group-add health-cmd health-interval health-retries health-start-period
        health-timeout help hostname init interactive ip ip6 ipc isolation kernel-memory label
        label-file link link-local-ip log-driver log-opt mac-address memory memory-reservation
        memory-swap memory-swappiness mount name network network-alias no-healthcheck
        oom-kill-disable oom-score-adj pid pids-limit platform privileged publish publish-all
        pull quiet read-only restart rm runtime security-opt shm-size sig-proxy stop-signal
        stop-timeout storage-opt sysctl tmpfs tty ulimit use-api-socket user userns uts volume
        volume-driver volumes-from workdir net net-alias dns-opt""".split()
    assert sorted(set(cli_flags) - set(BY_NAME)) == []


# --- the orchestrator's policy -----------------------------------------------------------


def test_policy_on_a_typical_config():
    spec = spec_of("-it", "--rm", IMG, "--rm=false")
    assert spec.auto_remove is True  # --rm=false after the image belongs to the server
    spec = spec_of("-it", "--rm", "--name", "mine", "-d", "-p", "8080:80", "--pull=always", IMG)
    result, issues = orchestrated(spec)
    assert (result.tty, result.stdin_open, result.auto_remove, result.name, result.detach) == (
        False,
        True,
        False,
        None,
        True,
    )
    assert result.pull == "always" and result.ports == spec.ports
    assert [(i.severity, i.flag, i.message) for i in issues] == [
        (
            "warning",
            "-t",
            "-t/--tty is turned off: a TTY would corrupt the server's JSON-RPC stream (CRLF line endings, echo)",
        ),
        (
            "info",
            "--rm",
            "--rm is not passed to Docker: the orchestrator removes the container "
            "itself, after keeping its exit code and last stderr lines",
        ),
        ("warning", "--name", "--name mine is ignored: the orchestrator names containers mcp-{server-id}"),
        (
            "info",
            "-d",
            "-d has no effect: the orchestrator always creates containers detached and attaches to them itself",
        ),
    ]


def test_policy_without_i_and_with_restart():
    result, issues = orchestrated(spec_of("--restart", "on-failure:3", IMG))
    assert result.stdin_open is True and result.restart is None
    assert [(i.severity, i.flag) for i in issues] == [("warning", None), ("warning", "--restart")]
    assert "no -i/--interactive: stdin is attached anyway" in issues[0].message
    assert "--restart on-failure is ignored: the orchestrator restarts a crashed server itself" in issues[1].message
    assert create_kwargs(result)["restart_policy"] == {"Name": "no", "MaximumRetryCount": 0}


def test_policy_is_quiet_for_a_clean_config():
    result, issues = orchestrated(spec_of("-i", "--restart", "no", IMG))
    assert issues == ()
    kwargs = create_kwargs(result)
    assert kwargs["stdin_open"] is True and kwargs["detach"] is True  # StdinOnce off
    assert kwargs["tty"] is False and "auto_remove" not in kwargs and "name" not in kwargs


def test_policy_drops_reserved_labels_and_warns_about_the_docker_socket():
    result, issues = orchestrated(
        spec_of(
            "-i",
            "-l",
            "mcp-orchestrator.server-id=evil",
            "-l",
            "team=a",
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            IMG,
        )
    )
    assert result.labels == (("team", "a"),)
    assert [i.message for i in issues] == [
        "the bind of /var/run/docker.sock gives the server control of the Docker engine, "
        "including the orchestrator's other containers",
        "label mcp-orchestrator.server-id is dropped: labels under mcp-orchestrator. are the "
        "orchestrator's own bookkeeping",
    ]


def test_policy_keeps_the_faithful_spec_unchanged():
    spec = spec_of("-it", "--rm", IMG)
    orchestrated(spec)
    assert spec.tty is True and spec.auto_remove is True


# --- SDK kwargs, public view, hash ------------------------------------------------------


def test_create_kwargs_shape():
    spec = spec_of(
        "-i",
        "--entrypoint",
        "/bin/echo hi",
        "-e",
        "A=1",
        "-e",
        "B",
        "-l",
        "x=1",
        "-v",
        "claude-memory:/data",
        "-v",
        "/anon",
        "--tmpfs",
        "/run:size=1m",
        "--init",
        "--no-healthcheck",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "3",
        "--gpus",
        "all",
        "--device",
        "/dev/fuse",
        "--ulimit",
        "nofile=1:2",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--network",
        "none",
        IMG,
        "serve",
        "--x",
        env={"B": "two"},
    )
    kw = create_kwargs(spec)
    assert kw["entrypoint"] == ["/bin/echo hi"]  # a list: the SDK would split a str
    assert kw["command"] == ["serve", "--x"]
    assert kw["environment"] == ["A=1", "B=two"]
    assert kw["labels"] == {"x": "1"}
    assert kw["volumes"] == ["claude-memory:/data", "/anon"]
    assert kw["tmpfs"] == {"/run": "size=1m"}
    assert kw["init"] is True and kw["healthcheck"] == {"test": ["NONE"]}
    assert kw["stop_signal"] == "SIGINT" and "stop_timeout" not in kw
    assert kw["device_requests"] == [
        {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert kw["devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}]
    assert kw["ulimits"] == [{"Name": "nofile", "Soft": 1, "Hard": 2}]
    assert kw["mem_limit"] == 64 << 20 and kw["nano_cpus"] == 500_000_000
    assert kw["network_mode"] == "none"
    assert "command" not in create_kwargs(spec_of(IMG))
    assert "entrypoint" not in create_kwargs(spec_of(IMG))


def test_create_kwargs_are_accepted_by_the_docker_sdk():
    docker_models = pytest.importorskip("docker.models.containers")
    spec = spec_of(
        "-it",
        "--rm",
        "-e",
        "A=1",
        "-v",
        "vol:/v",
        "--mount",
        "type=tmpfs,dst=/t",
        "-p",
        "8080:80",
        "--expose",
        "90",
        "--cap-add",
        "NET_ADMIN",
        "--restart",
        "no",
        "--log-opt",
        "max-size=1m",
        "--gpus",
        "1",
        "--ulimit",
        "nofile=1",
        "--security-opt",
        "no-new-privileges",
        "--sysctl",
        "net.a=1",
        "--name",
        "abc",
        "--platform",
        "linux/amd64",
        IMG,
    )
    args = docker_models._create_container_args(dict(create_kwargs(spec), version="1.41"))
    host = args["host_config"]
    assert host["Binds"] == ["vol:/v"] and host["RestartPolicy"]["Name"] == "no"
    assert host["PortBindings"]["90/tcp"] == []


def test_public_dict_masks_env_and_is_json():
    spec = spec_of("-i", "-e", "TOKEN=s3cr3t-value", "-p", "8080:80", "-v", "data:/d", IMG)
    view = spec.public_dict()
    text = json.dumps(view)
    assert "s3cr3t-value" not in text
    assert view["env"] == [{"name": "TOKEN", "value": "***"}]
    assert view["ports"] == [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": "8080"}]
    assert view["volumes"][0]["kind"] == "volume"
    assert view["image"] == IMG and view["stdin_open"] is True


def test_spec_hash_is_stable_and_sensitive():
    a = spec_of("-i", "-e", "A=1", IMG)
    assert spec_hash(a) == spec_hash(spec_of("-i", "-e", "A=1", IMG))
    assert len(spec_hash(a)) == 16 and int(spec_hash(a), 16) >= 0
    assert spec_hash(a) != spec_hash(spec_of("-i", "-e", "A=2", IMG))  # env values count
    assert spec_hash(a) != spec_hash(spec_of("-i", "-e", "A=1", IMG, "x"))
    assert spec_hash(a) != spec_hash(spec_of("-e", "A=1", IMG))
    assert spec_hash(orchestrated(a)[0]) != spec_hash(a)


def test_spec_hash_is_the_same_in_another_process():
    code = (
        "from pathlib import Path; from common.docker_args import parse_docker_run; "
        "from common.container_spec import spec_hash; from common.secrets import Secret; "
        "r = parse_docker_run(['-i', '-e', 'A=1', '-e', 'B', '-v', 'dv:/d', '-p', '80', "
        "'--mount', 'type=tmpfs,dst=/t', 'mcp/time', 'x'], env_block={'B': Secret('b')}, "
        "process_env={}, base_dir=Path('.')); print(spec_hash(r.spec))"
    )
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
            ).stdout.strip()
        )
    here = spec_hash(
        spec_of(
            "-i",
            "-e",
            "A=1",
            "-e",
            "B",
            "-v",
            "dv:/d",
            "-p",
            "80",
            "--mount",
            "type=tmpfs,dst=/t",
            "mcp/time",
            "x",
            env={"B": "b"},
        )
    )
    assert outs == {here}


# --- the 34 published configs ------------------------------------------------------------

NOT_FOUND = "/full/path/to/file/above/.env: file not found"
NO_BIND = "does not exist; Docker refuses to create the container until it does"
REAL = {
    # file: (accepted?, [(severity, flag, phrase), ...] expected from the parser)
    "01-mcp-fetch.json": (True, []),
    "02-mcp-filesystem.json": (True, [("warning", "--mount", NO_BIND)] * 3),
    "03-mcp-git.json": (True, [("warning", "--mount", NO_BIND)]),
    "04-mcp-git-multimount.json": (True, [("warning", "--mount", NO_BIND)] * 3),
    "05-mcp-memory.json": (True, []),
    "06-mcp-time.json": (
        False,
        [("error", "-e", "no value for LOCAL_TIMEZONE in the server's env block or the orchestrator's environment")],
    ),
    "07-mcp-sequentialthinking.json": (True, []),
    "08-mcp-puppeteer.json": (True, []),
    "09-mcp-brave-search.json": (True, []),
    "10-mcp-slack.json": (True, []),
    "11-mcp-aws-kb-retrieval.json": (True, []),
    "12-mcp-redis.json": (True, []),
    "13-mcp-postgres.json": (True, []),
    "14-mcp-sqlite.json": (True, []),
    "15-mcp-gitlab.json": (True, []),
    "16-mcp-gdrive.json": (True, []),
    "17-mcp-sentry.json": (True, []),
    "18-aws-documentation.json": (True, []),
    "19-aws-pricing.json": (False, [("error", "--env-file", NOT_FOUND)]),
    "20-aws-api.json": (
        True,
        [("warning", "--volume", "the host path /full/path/to/.aws does not exist; Docker will create it")],
    ),
    "21-aws-cloudwatch.json": (
        False,
        [("error", "-v", "'~' is not expanded: no shell runs these args; write an absolute path")],
    ),
    "22-aws-cloudtrail.json": (
        False,
        [
            ("error", "-v", '"-v ~/.aws:/root/.aws" is a flag and its value in one array element'),
            ("error", "-e", '"-e AWS_PROFILE=…" is a flag and its value in one array element'),
            ("error", "-v", "'~' is not expanded"),
        ],
    ),
    "23-aws-healthlake.json": (True, []),
    "24-aws-healthlake-readonly.json": (True, []),
    "25-aws-aurora-dsql.json": (False, [("error", "--env-file", NOT_FOUND)]),
    "26-aws-ccapi.json": (False, [("error", "--env-file", NOT_FOUND)]),
    "27-aws-valkey-readonly.json": (True, []),
    "28-aws-postgres.json": (True, []),
    "29-aws-applicationsignals.json": (False, [("error", "-v", "'${HOME}' is not expanded")]),
    "30-aws-security-agent.json": (
        False,
        [
            ("error", "-e", f"no value for {k} in the server's env block or the orchestrator's environment")
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        ],
    ),
    "31-aws-neptune.json": (
        True,
        [("warning", None, "env keys FASTMCP_LOG_LEVEL, NEPTUNE_ENDPOINT not passed to the container")],
    ),
    "32-aws-stepfunctions.json": (False, [("error", "--env-file", NOT_FOUND)]),
    "33-aws-iac.json": (False, [("error", "--volume", "'${HOME}' is not expanded")]),
    "34-terraform-migration-doc.json": (True, []),
}


def _real_server(name: str):
    data = json.loads((REAL_CONFIGS / name).read_text())
    [(server_id, entry)] = data["config"]["mcpServers"].items()
    assert entry["command"] == "docker" and entry["args"][0] == "run"
    return server_id, entry


def test_the_table_covers_every_published_config():
    assert sorted(REAL) == sorted(p.name for p in REAL_CONFIGS.glob("*.json"))


@pytest.mark.parametrize("name", sorted(REAL))
def test_published_config_is_accepted_or_rejected_deliberately(name):
    accepted, expected = REAL[name]
    _, entry = _real_server(name)
    result = parse(entry["args"][1:], env=entry.get("env") or {}, penv={}, base_dir=REAL_CONFIGS)
    assert (result.spec is not None) == accepted, result.issues
    notable = [i for i in result.issues if i.severity != "info"]
    assert len(notable) == len(expected), notable
    for issue, (severity, flag, phrase) in zip(notable, expected):
        assert (issue.severity, issue.flag) == (severity, flag)
        assert phrase in issue.message, issue.message


def test_published_configs_keep_their_meaning():
    spec = parse(_real_server("17-mcp-sentry.json")[1]["args"][1:]).spec
    assert spec.image == "mcp/sentry" and spec.command == ("--auth-token", "YOUR_SENTRY_TOKEN")
    spec = parse(
        _real_server("25-aws-aurora-dsql.json")[1]["args"][1:3]
        + ["awslabs/aurora-dsql-mcp-server:latest", "--region", "[your data]"]
    ).spec
    assert spec.command == ("--region", "[your data]")
    _, entry = _real_server("10-mcp-slack.json")
    spec = parse(entry["args"][1:], env=entry["env"]).spec
    assert dict(env_of(spec))["SLACK_CHANNEL_IDS"] == "C01234567, C76543210"
    _, entry = _real_server("23-aws-healthlake.json")
    spec = parse(entry["args"][1:]).spec
    assert spec.stdin_open is False  # faithful; the policy attaches stdin anyway
    result, issues = orchestrated(spec)
    assert result.stdin_open is True and any("no -i/--interactive" in i.message for i in issues)
    spec = parse(_real_server("20-aws-api.json")[1]["args"][1:]).spec
    assert spec.image == "public.ecr.aws/awslabs-mcp/awslabs/aws-api-mcp-server:latest"
    assert spec.volumes == (VolumeSpec("/full/path/to/.aws:/app/.aws", "bind", "/full/path/to/.aws", "/app/.aws"),)


# --- secrets --------------------------------------------------------------------------------

CANARY = "CANARY-7f3a9c1e-do-not-print"


def _all_text(result: ParsedRun) -> str:
    parts = [repr(result), str(result)] + [i.message for i in result.issues]
    if result.spec is not None:
        parts += [
            repr(result.spec),
            str(result.spec),
            json.dumps(result.spec.public_dict()),
            repr(orchestrated(result.spec)),
            spec_hash(result.spec),
        ]
    return "\n".join(parts)


@pytest.mark.parametrize(
    "args, env, penv",
    [
        (["-i", "-e", "TOKEN", IMG], {"TOKEN": CANARY, "UNUSED": CANARY}, {}),
        (["-i", "-e", "TOKEN", "-e", "TOKEN=" + CANARY, IMG], {"TOKEN": CANARY}, {}),
        (["-i", "-e", "TOKEN", IMG], {}, {"TOKEN": CANARY}),
        (["-e", "TOKEN=" + CANARY, "--frobnicate", IMG], {}, {}),
        (["-e", "TOKEN=" + CANARY, "-e", "MISSING", IMG], {}, {}),
        (["-e", "TOKEN " + CANARY, IMG], {}, {}),
        (["-e", "=" + CANARY, IMG], {}, {}),
        (["-e TOKEN=" + CANARY, IMG], {}, {}),
        (["-e TOKEN " + CANARY, IMG], {}, {}),
        (["-ie TOKEN=" + CANARY, IMG], {}, {}),
        (["-xeTOKEN=" + CANARY, IMG], {}, {}),
        (["-ieTOKEN=" + CANARY, "-v", "~/x:/x", IMG], {}, {}),
        (["--env=TOKEN=" + CANARY + "${input:x}", IMG], {}, {}),
        (["-e", "TOKEN", IMG], {"TOKEN": "${input:x}" + CANARY}, {}),
        (["-e", "TOKEN=" + CANARY, "-l", "mcp-orchestrator.x=1", "-it", "--rm", IMG], {}, {}),
    ],
)
def test_env_values_never_appear_in_messages_or_views(args, env, penv):
    result = parse(args, env=env, penv=penv)
    assert CANARY not in _all_text(result)


def test_env_file_values_never_appear(tmp_path):
    f = tmp_path / "s.env"
    f.write_text(f"GOOD={CANARY}\nTOKEN {CANARY}\n")
    result = parse(["--env-file", str(f), IMG])
    assert result.spec is None and CANARY not in _all_text(result)
    assert "'TOKEN …' is not NAME=VALUE" in errors_of(result)[0][1]
    f.write_text(f"GOOD={CANARY}\n={CANARY}\n")
    result = parse(["--env-file", str(f), IMG])
    assert CANARY not in _all_text(result) and "no variable name" in errors_of(result)[0][1]
    f.write_text(f"GOOD={CANARY}\nX=${{input:x}}{CANARY}\nBARE\n")
    result = parse(["--env-file", str(f), IMG])
    assert CANARY not in _all_text(result)


def test_a_plain_string_in_the_env_block_is_refused_without_showing_it():
    with pytest.raises(TypeError) as info:
        parse_docker_run([IMG], env_block={"TOKEN": CANARY}, process_env={}, base_dir=HERE)
    assert CANARY not in str(info.value) and CANARY not in repr(info.value)


def test_the_value_only_reaches_create_kwargs():
    spec = spec_of("-e", "TOKEN", IMG, env={"TOKEN": CANARY})
    assert create_kwargs(spec)["environment"] == [f"TOKEN={CANARY}"]
    assert CANARY not in repr(spec) and CANARY not in json.dumps(spec.public_dict())


def test_issue_is_a_plain_frozen_record():
    issue = ArgIssue("error", "-e", "m")
    with pytest.raises(Exception):
        issue.message = "x"  # type: ignore[misc]


def test_parsing_never_raises_on_arbitrary_input(tmp_path):
    """Errors are values: a deterministic shower of odd argument lists."""
    import random

    tokens = [
        "-i",
        "-t",
        "-e",
        "-v",
        "--mount",
        "--env-file",
        "--rm",
        "-p",
        "--",
        "-",
        "",
        " ",
        "=",
        "-e=",
        "-ie",
        "-it",
        "--rm=",
        "A=1",
        "A",
        "=x",
        "~/x",
        "/tmp:/x:ro",
        "${input:x}",
        "$HOME",
        "type=bind",
        "type=bind,src=/tmp,dst=/x",
        "mcp/time",
        "Bad",
        "\x00",
        "1e400",
        "9" * 30,
        "--cpus",
        "--memory",
        "1e99999999",
        "--gpus",
        '"a',
        "--ulimit",
        "nofile=1:2:3",
        "-p",
        "1-3:1-2",
        "--add-host",
        "[::1]",
        "--security-opt",
        "seccomp=\x00",
        "--label-file",
        "-l",
        "--tmpfs",
        ":",
        "::",
        "--network",
        "--device",
        "--restart",
        "on-failure:99999999999999999999",
        "--stop-timeout",
        "-c",
        "--expose",
        "0-0",
        "-h",
        "-w",
        "--entrypoint",
    ]
    rng = random.Random(20261123)
    for _ in range(3000):
        args = [rng.choice(tokens) for _ in range(rng.randint(0, 8))]
        result = parse(args, env={"A": "1"}, penv={"B": "2"}, base_dir=tmp_path)
        assert isinstance(result, ParsedRun)
        assert (result.spec is None) == bool(result.errors)
