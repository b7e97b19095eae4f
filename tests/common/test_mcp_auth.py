import pytest
import yaml

from common.litellm import LiteLLMServer, render_mcp_servers
from common.mcp_auth import TokenError, bearer_token, parse_tokens
from common.settings import SettingsError, load_settings

A = "a" * 16
B = "b-token.with~all+chars/0123="


def test_tokens_for_all_servers_and_for_one():
    tokens = parse_tokens(f"{A}, time:{B}\n other:{'c' * 20}")
    assert tokens.allows("time", A) and tokens.allows("git", A)
    assert tokens.allows("time", B) and not tokens.allows("git", B)
    assert not tokens.allows("time", "c" * 20)
    assert not tokens.allows("time", None) and not tokens.allows("time", "")
    assert not tokens.allows("time", A[:-1]) and not tokens.allows("time", A + "a")
    assert not parse_tokens("  ")


@pytest.mark.parametrize(
    "text, words",
    [
        ("short", "at least 16"),
        (f"{A} sp@ce{A}", "entry 2"),
        (f":{A}", "server id"),
    ],
)
def test_malformed_tokens_are_named_by_position_never_quoted(text, words):
    with pytest.raises(TokenError) as err:
        parse_tokens(text)
    assert words in str(err.value)
    assert A not in str(err.value) and "short" not in str(err.value)


def test_bearer_header_forms():
    assert bearer_token(f"Bearer {A}") == A
    assert bearer_token(f"bearer   {A} ") == A
    assert bearer_token(f"Basic {A}") is None
    assert bearer_token("Bearer") is None and bearer_token(None) is None


def test_a_bridge_reachable_from_other_hosts_needs_tokens_or_an_explicit_none():
    with pytest.raises(SettingsError) as err:
        load_settings(None, {"MCP_ORCHESTRATOR_SERVICE_BRIDGE_HOST": "0.0.0.0"})
    assert "auth = none" in str(err.value)
    opened = load_settings(
        None,
        {
            "MCP_ORCHESTRATOR_SERVICE_BRIDGE_HOST": "0.0.0.0",
            "MCP_ORCHESTRATOR_BRIDGE_AUTH": "none",
            "MCP_ORCHESTRATOR_BRIDGE_TOKENS": A,
        },
    )
    assert opened.bridge_open and not opened.bridge_tokens
    locked = load_settings(
        None, {"MCP_ORCHESTRATOR_SERVICE_BRIDGE_HOST": "0.0.0.0", "MCP_ORCHESTRATOR_BRIDGE_TOKENS": A}
    )
    assert not locked.bridge_open and locked.bridge_tokens.allows("x", A)
    assert locked.public_dict()["bridge"]["tokens"] == "***"
    assert load_settings(None, {}).bridge_open  # loopback, no tokens: make run as it was


def test_litellm_snippet_names_the_variable_never_the_token():
    tokens = parse_tokens(f"{A}, my-git:{B}")
    text = render_mcp_servers(
        [LiteLLMServer("time", "http://h:1/mcp/time/mcp"), LiteLLMServer("my-git", "http://h:2/mcp/my-git/mcp")],
        tokens=tokens,
    )
    assert A not in text and B not in text
    servers = yaml.safe_load(text)["mcp_servers"]
    assert servers["time"]["auth_type"] == "bearer_token"
    assert servers["time"]["auth_value"] == "os.environ/MCP_ORCHESTRATOR_TOKEN"
    assert servers["my_git"]["auth_value"] == "os.environ/MCP_ORCHESTRATOR_TOKEN_MY_GIT"
    plain = yaml.safe_load(render_mcp_servers([LiteLLMServer("time", "http://h:1/mcp/time/mcp")]))
    assert "auth_type" not in plain["mcp_servers"]["time"]
