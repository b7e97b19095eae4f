"""Server ids and the paths, names and URLs made from them: one rule for every process."""

from __future__ import annotations

import pytest

from common import server_ids


@pytest.mark.parametrize("server_id", ["time", "a", "github.com", "my_server-2", "A1", "x" * 100])
def test_valid_ids(server_id):
    assert server_ids.problem(server_id) is None


@pytest.mark.parametrize(
    "server_id",
    [
        "",
        None,
        5,
        "-x",
        ".hidden",
        "a/b",
        "a*",
        "a?",
        "with space",
        " padded",
        "ünï",
        "x" * 101,
        # The alb-agent once accepted these while the configuration refused them.
        "A@b",
        "c:d",
        "e+f",
        # The bridge once accepted anything without '/' or spaces.
        "%2e%2e",
        "<script>",
    ],
)
def test_invalid_ids(server_id):
    assert server_ids.problem(server_id)


def test_a_long_id_is_not_quoted_whole():
    assert "x" * 101 not in server_ids.problem("x" * 101)


def test_paths_and_names():
    assert server_ids.path_prefix("time") == "/mcp/time"
    assert server_ids.endpoint_path("time") == "/mcp/time/mcp"
    assert server_ids.messages_path("time") == "/mcp/time/messages"
    assert server_ids.health_path("time") == "/mcp/time/health"
    assert server_ids.path_patterns("time") == ("/mcp/time", "/mcp/time/*")
    assert server_ids.container_name("time") == "mcp-time"
    longest = server_ids.path_patterns("x" * server_ids.MAX_LENGTH)[1]
    assert len(longest) <= 128  # the ALB's limit per path pattern


@pytest.mark.parametrize(
    "path,parts",
    [
        ("/mcp/time/mcp", ("time", "mcp")),
        ("/mcp/time/", ("time", "")),
        ("/mcp/time/sse/x", ("time", "sse/x")),
        ("/mcp/time", None),
        ("/other/time/mcp", None),
        ("/mcp", None),
    ],
)
def test_split_path(path, parts):
    assert server_ids.split_path(path) == parts


@pytest.mark.parametrize(
    "base,host,port,url",
    [
        ("https://alb.example/", "0.0.0.0", 8001, "https://alb.example/mcp/t/mcp"),
        ("", "0.0.0.0", 8001, "http://127.0.0.1:8001/mcp/t/mcp"),
        ("", "10.0.0.5", 8001, "http://10.0.0.5:8001/mcp/t/mcp"),
        ("", "::1", 8001, "http://[::1]:8001/mcp/t/mcp"),
        ("", "127.0.0.1", None, ""),
    ],
)
def test_public_url(base, host, port, url):
    assert server_ids.public_url(base, host, "t", port) == url
