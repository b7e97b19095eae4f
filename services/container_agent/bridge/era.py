"""What tells the two protocol eras apart on the wire, and how the bridge crosses between them.

Handshake era (2024-11-05 .. 2025-11-25): `initialize` once, then requests within that
session. Modern era (2026-07-28): no handshake; every request carries its protocol
version and the client's capabilities in `params._meta`. A stdio server of either
era may face clients of either era: these are the pure pieces of that translation
(the I/O is in upstream.py and modern.py).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

MODERN_VERSIONS = ("2026-07-28",)
MODERN_VERSION = MODERN_VERSIONS[-1]
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"
META_SUBSCRIPTION = "io.modelcontextprotocol/subscriptionId"
# The protocol's own `_meta` keys: a handshake-era server does not know them.
PROTOCOL_META = "io.modelcontextprotocol/"

UNSUPPORTED_VERSION = -32022

# Fields of a modern result that a handshake-era InitializeResult has no place for.
_DISCOVER_ONLY = ("resultType", "supportedVersions", "ttlMs", "cacheScope", "_meta")


def probe_request(request_id: Any, client_info: Mapping[str, Any]) -> dict:
    """The spec's backward-compatibility probe on stdio: `server/discover` at the
    newest modern version, sent before anything else."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "server/discover",
        "params": {
            "_meta": {META_VERSION: MODERN_VERSION, META_CAPABILITIES: {}, META_CLIENT_INFO: dict(client_info)},
        },
    }


MODERN, LEGACY, REFUSED = "modern", "legacy", "refused"


def probe_verdict(answer: Any) -> tuple[str, Any]:
    """What the answer to the probe says about the server, as (verdict, detail):
    (MODERN, its DiscoverResult) when it shares a modern version with the bridge;
    (REFUSED, the versions it offers) when it is modern but shares none (the spec
    forbids falling back to initialize then); (LEGACY, None) for any other answer:
    the fallback must not depend on one particular error code."""
    if not isinstance(answer, dict):
        return LEGACY, None
    result = answer.get("result")
    if isinstance(result, dict) and isinstance(result.get("supportedVersions"), list):
        offered = [v for v in result["supportedVersions"] if isinstance(v, str)]
        if any(v in MODERN_VERSIONS for v in offered):
            return MODERN, result
        return REFUSED, offered
    error = answer.get("error")
    if isinstance(error, dict) and error.get("code") == UNSUPPORTED_VERSION:
        data = error.get("data")
        supported = data.get("supported") if isinstance(data, dict) else None
        if isinstance(supported, list):
            return REFUSED, [v for v in supported if isinstance(v, str)]
    return LEGACY, None


def handshake_view(discovered: Mapping[str, Any], protocol_version: str) -> dict:
    """An InitializeResult for handshake-era clients of a modern-only server, made from
    its DiscoverResult (its version is negotiated per client later)."""
    result = {k: v for k, v in discovered.items() if k not in _DISCOVER_ONLY}
    result["protocolVersion"] = protocol_version
    capabilities = dict(result.get("capabilities") or {})
    # logging/setLevel is answered by the bridge (the level then travels per request).
    capabilities.setdefault("logging", {})
    result["capabilities"] = capabilities
    meta = discovered.get("_meta")
    info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
    result["serverInfo"] = info if isinstance(info, dict) else {"name": "unknown", "version": "unknown"}
    return result


def add_request_meta(msg: dict, capabilities: Mapping[str, Any], log_level: Optional[str]) -> None:
    """Make a handshake-era client's request (or the bridge's own) one a modern server
    takes: the protocol version and capabilities in `_meta`, the session's log level
    when it set one. Keys a modern client sent itself are kept."""
    params = msg.get("params")
    if not isinstance(params, dict):
        params = msg["params"] = {}
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        meta = params["_meta"] = {}
    meta.setdefault(META_VERSION, MODERN_VERSION)
    if META_CAPABILITIES not in meta:
        meta[META_CAPABILITIES] = dict(capabilities)
    if log_level is not None:
        meta.setdefault(META_LOG_LEVEL, log_level)


def strip_protocol_meta(msg: dict) -> dict:
    """The request as a handshake-era server takes it: the protocol's own `_meta` keys
    removed (the others, such as a progress token or trace context, stay)."""
    params = msg.get("params")
    if isinstance(params, dict) and isinstance(params.get("_meta"), dict):
        kept = {k: v for k, v in params["_meta"].items() if not k.startswith(PROTOCOL_META)}
        params = {k: v for k, v in params.items() if k != "_meta"}
        if kept:
            params["_meta"] = kept
        msg = dict(msg, params=params)
        if not params:
            del msg["params"]
    return msg
