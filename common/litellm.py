"""The `mcp_servers:` block of a LiteLLM Proxy config.yaml for our servers. Pure.

LiteLLM prefixes every tool with its server's name and rejects names with `-`, so a
server id is mapped to letters, digits and `_` (`aws-docs.v2` -> `aws_docs_v2`). Two
ids that map to the same name get a numeric suffix, in id order, so the output is
stable. Values are written as double-quoted YAML scalars (JSON string syntax, which
YAML reads the same way).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Optional

from common.mcp_auth import LITELLM_TOKEN_ENV, TokenSet, litellm_token_env


@dataclass(frozen=True)
class LiteLLMServer:
    server_id: str
    url: str
    description: str = ""


# Plain YAML scalars that a YAML reader turns into booleans or null, not strings.
_YAML_SPECIAL = {"y", "yes", "n", "no", "true", "false", "on", "off", "null"}


def litellm_name(server_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", server_id)
    if not name or name[0].isdigit() or name.lower() in _YAML_SPECIAL:
        return f"mcp_{name}"
    return name


def litellm_names(server_ids: Iterable[str]) -> dict[str, str]:
    """server id -> a unique LiteLLM name."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for sid in sorted(server_ids):
        base = name = litellm_name(sid)
        n = 2
        while name in used:
            name = f"{base}_{n}"
            n += 1
        used.add(name)
        out[sid] = name
    return out


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def render_mcp_servers(
    servers: Iterable[LiteLLMServer], comments: Optional[list[str]] = None, tokens: TokenSet = TokenSet()
) -> str:
    """`tokens`: the bridges' tokens; each server then names the variable LiteLLM reads
    its token from (`os.environ/NAME`): never a token itself."""
    servers = sorted(servers, key=lambda s: s.server_id)
    names = litellm_names(s.server_id for s in servers)
    lines = [f"# {c}" for c in comments or []]
    if tokens and servers:
        lines.append(
            f"# set {LITELLM_TOKEN_ENV} (and any {LITELLM_TOKEN_ENV}_<NAME> below) in "
            f"LiteLLM's environment to a token from [bridge] tokens"
        )
    if not servers:
        lines.append("mcp_servers: {}")
        return "\n".join(lines) + "\n"
    lines.append("mcp_servers:")
    for server in servers:
        name = names[server.server_id]
        if name != server.server_id:
            lines.append(f"  # server id {server.server_id}")
        lines.append(f"  {name}:")
        lines.append(f"    url: {_quoted(server.url)}")
        lines.append('    transport: "http"')
        if tokens:
            env = litellm_token_env(server.server_id, tokens, name)
            lines.append('    auth_type: "bearer_token"')
            lines.append(f"    auth_value: {_quoted('os.environ/' + env)}")
        if server.description:
            lines.append(f"    description: {_quoted(server.description)}")
    return "\n".join(lines) + "\n"
