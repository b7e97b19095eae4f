"""Bearer tokens that open the MCP endpoints (`[bridge] tokens`).

The value is a comma- or whitespace-separated list. An entry `TOKEN` is valid for every
server; `SERVER-ID:TOKEN` only for that server. Several entries may be valid at once,
which is how a token is rotated: add the new one, move the clients, remove the old one.
Tokens use the RFC 6750 token characters (no `:` among them, so the two forms cannot be
confused) and are at least 16 characters long.

Only SHA-256 digests of the tokens are kept once parsed, and a presented token is
compared against every candidate with `hmac.compare_digest`, so neither the time taken
nor anything kept in memory for long tells which token or how much of it matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Optional

MIN_TOKEN_LENGTH = 16
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# The environment variable LiteLLM's side reads a token from (`os.environ/NAME`).
LITELLM_TOKEN_ENV = "MCP_ORCHESTRATOR_TOKEN"


class TokenError(ValueError):
    """A malformed `[bridge] tokens` value; the message never quotes a token."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenSet:
    everywhere: tuple[bytes, ...] = ()
    per_server: dict[str, tuple[bytes, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.everywhere or self.per_server)

    def has_own(self, server_id: str) -> bool:
        return server_id in self.per_server

    def allows(self, server_id: str, presented: Optional[str]) -> bool:
        """Whether `presented` (the token of an Authorization header) opens `server_id`."""
        if not presented:
            return False
        digest = _digest(presented)
        ok = False
        for candidate in self.everywhere + self.per_server.get(server_id, ()):
            ok |= hmac.compare_digest(digest, candidate)  # no early exit: constant time
        return ok


def parse_tokens(text: str) -> TokenSet:
    everywhere: list[bytes] = []
    per_server: dict[str, list[bytes]] = {}
    for n, entry in enumerate(re.split(r"[\s,]+", text.strip()), start=1):
        if not entry:
            continue
        server_id, colon, token = entry.rpartition(":")
        where = f"entry {n}" + (f" (server {server_id!r})" if colon else "")
        if colon and not server_id:
            raise TokenError(f"{where}: a server id must come before ':'")
        if not _TOKEN.fullmatch(token):
            raise TokenError(f"{where}: a token may hold only letters, digits and -._~+/ (then '=')")
        if len(token) < MIN_TOKEN_LENGTH:
            raise TokenError(f"{where}: a token must be at least {MIN_TOKEN_LENGTH} characters long")
        if colon:
            per_server.setdefault(server_id, []).append(_digest(token))
        else:
            everywhere.append(_digest(token))
    return TokenSet(tuple(everywhere), {k: tuple(v) for k, v in per_server.items()})


def tokens_problem(text: str) -> Optional[str]:
    try:
        parse_tokens(text)
    except TokenError as exc:
        return str(exc)
    return None


def bearer_token(authorization: Optional[str]) -> Optional[str]:
    """The token of an `Authorization: Bearer …` header (None for any other form)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def litellm_token_env(server_id: str, tokens: TokenSet, litellm_name: str) -> str:
    """The variable LiteLLM reads this server's token from."""
    if tokens.has_own(server_id):
        return f"{LITELLM_TOKEN_ENV}_{litellm_name.upper()}"
    return LITELLM_TOKEN_ENV
