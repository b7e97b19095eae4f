"""A canary secret from an env block never reaches a log line, an error or a message."""

from __future__ import annotations

import io
import json
import logging
import pickle

import pytest

from common.config import load_config
from common.logs import RedactingFormatter, setup_logging
from common.secrets import MASK, Secret, redact

CANARY = "canary-7d1e-SECRET-value"


def test_secret_is_masked_everywhere_it_could_be_printed():
    s = Secret(CANARY)
    assert CANARY not in str(s) and CANARY not in repr(s) and CANARY not in f"{s}"
    assert CANARY not in "%s %r" % (s, s)
    assert s.reveal() == CANARY
    assert s != CANARY and s == Secret(CANARY)
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_redact_masks_known_values_only():
    Secret(CANARY)
    assert redact(f"token={CANARY}!") == f"token={MASK}!"
    Secret("abc")  # too short to be worth masking in free text
    assert redact("abc") == "abc"


def test_log_lines_and_tracebacks_are_redacted(tmp_path):
    Secret(CANARY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test.secrets")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.error("leaked %s", CANARY)
        try:
            raise RuntimeError(f"library error mentioning {CANARY}")
        except RuntimeError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert CANARY not in out and out.count(MASK) == 2


@pytest.fixture
def process_logging():
    """setup_logging() changes the whole process: put everything back afterwards, or the
    handler left on this test's captured (then closed) stderr breaks later tests."""
    import sys
    import threading

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook, threading.excepthook)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    sys.excepthook, threading.excepthook = saved[2], saved[3]


def test_setup_logging_installs_redaction(capsys, process_logging):
    Secret(CANARY)
    setup_logging("INFO", "test")
    logging.getLogger("x").warning("value %s", CANARY)
    err = capsys.readouterr().err
    assert "value ***" in err and CANARY not in err


def test_config_issues_and_views_never_show_env_values(tmp_path):
    path = tmp_path / "mcp.config.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "a": {
                        "command": "docker",
                        "args": ["run", "-i", "-e", "K", "--bogus", "img"],
                        "env": {"K": CANARY, "UNREFERENCED": CANARY},
                    },
                    "b": {"command": "docker", "args": ["run", "-i", "-e", "K", "img"], "env": {"K": CANARY}},
                }
            }
        )
    )
    config = load_config(path, environ={})
    everything = json.dumps(config.public_dict()) + repr(config) + " ".join(map(str, config.issues))
    assert CANARY not in everything


def test_shown_masks_before_it_cuts():
    from common.secrets import Secret, shown

    value = "straddling-secret-0123456789"
    Secret(value)
    line = "x" * 1990 + value + " tail"
    out = shown(line)
    assert "***" in out and "straddl" not in out
    assert shown("y" * 3000).endswith(" [cut]") and len(shown("y" * 3000)) == 2006


def test_the_spec_hash_cannot_be_used_to_test_a_guessed_secret():
    import dataclasses
    import hashlib
    import json
    from pathlib import Path

    from common.container_spec import _canonical, spec_hash
    from common.docker_args import parse_docker_run
    from common.secrets import Secret
    from common.spec_hash_key import installation_key

    def spec(value: str):
        return parse_docker_run(
            ["-i", "-e", "TOKEN", "img"], env_block={"TOKEN": Secret(value)}, process_env={}, base_dir=Path("/")
        ).spec

    secret = spec("guess-me-0123456789")
    published = spec_hash(secret)
    # The old unkeyed hash of the same spec, which a guesser could recompute, differs.
    text = json.dumps(_canonical(secret), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] != published
    assert spec_hash(secret, key=b"another installation") != published
    assert spec_hash(spec("guess-me-0123456789")) == published  # stable for one key
    assert spec_hash(spec("rotated-0123456789")) != published  # a new secret recreates
    assert len(installation_key()) == 32 and dataclasses.is_dataclass(secret)
