"""JSON-RPC 2.0 messages as the bridge handles them: classify, build, re-address.

Pure functions over bytes and parsed JSON. The bridge parses what it must route
and re-serialises as little as possible: a response from the server usually only
needs its id put back, which is done on the bytes when the id's position is
certain (see `swap_response_id`).
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any, Optional, Union

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Implementation-defined codes (the -32000..-32099 range), as the MCP SDKs use them.
TRANSPORT_ERROR = -32000  # rejected at the HTTP level, or the server is unavailable
REQUEST_TIMEOUT = -32001
REQUEST_CANCELLED = -32800

NULL_ID = b"null"


class Kind(Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


# One encoder for every message: json.dumps with separators builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """Compact JSON, ASCII-only (no raw newline or CR can appear in it)."""
    return _COMPACT.encode(obj).encode()


def classify(msg: Any) -> Union[Kind, str]:
    """The kind of a parsed message, or why it is not a valid JSON-RPC 2.0 message."""
    if not isinstance(msg, dict):
        return "a JSON-RPC message must be an object"
    if msg.get("jsonrpc") != "2.0":
        return 'a JSON-RPC message must carry "jsonrpc": "2.0"'
    has_id = "id" in msg
    if has_id and not valid_id(msg["id"]):
        return "a JSON-RPC id must be a string or an integer"
    if "method" in msg:
        if not isinstance(msg["method"], str) or not msg["method"]:
            return "a JSON-RPC method must be a non-empty string"
        if "params" in msg and not isinstance(msg["params"], (dict, list)):
            return "JSON-RPC params must be an object or an array"
        return Kind.REQUEST if has_id else Kind.NOTIFICATION
    if has_id and ("result" in msg) != ("error" in msg):
        return Kind.RESPONSE
    return "not a request, a notification or a response"


def valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def id_of(msg: Any) -> bytes:
    """The id of a (possibly invalid) message as JSON, null when it has no usable id."""
    if isinstance(msg, dict) and valid_id(msg.get("id")):
        return dumps(msg["id"])
    return NULL_ID


def error(id_json: bytes, code: int, message: str) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + id_json + b',"error":' + dumps({"code": code, "message": message}) + b"}"


def error_object(id_json: bytes, error: dict) -> bytes:
    """An error response with an error object of the caller's making (one with data)."""
    return b'{"jsonrpc":"2.0","id":' + id_json + b',"error":' + dumps(error) + b"}"


def result(id_json: bytes, result_json: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + id_json + b',"result":' + result_json + b"}"


# The exact start of a response as the Python MCP SDK (and many others) write it:
# with it, a response is recognised and re-addressed without parsing its body.
_RESPONSE_PREFIX = b'{"jsonrpc":"2.0","id":'
_PREFIX_LEN = len(_RESPONSE_PREFIX)
_FAST_ID = re.compile(rb'(\d{1,18})(?=,"(?:result|error)":)')


def fast_response_id(line: bytes) -> Optional[tuple[int, int]]:
    """(id, offset of what follows the id) for a line in the canonical response form.

    The form `{"jsonrpc":"2.0","id":N,"result":` (or `"error":`) is at the top
    level by construction (nothing opens before it), so the id is certain.
    """
    if not line.startswith(_RESPONSE_PREFIX):
        return None
    m = _FAST_ID.match(line, _PREFIX_LEN)
    if m is None:
        return None
    return int(m.group(1)), m.end()


def readdress_fast(line: bytes, rest: int, new_id_json: bytes) -> bytes:
    return _RESPONSE_PREFIX + new_id_json + line[rest:]


_WS = b" \t\r\n"


def swap_response_id(line: bytes, old_id: int, new_id_json: bytes) -> Optional[bytes]:
    """Replace the top-level integer id of a valid JSON object line, or None.

    `"id":<old_id>` is replaced only where it provably is the top-level member:
    nothing nested opens before it, or it is the object's last member. A key
    string that starts right after `{` or `,` is a real key (a quote inside a
    string is escaped), which rules out look-alikes. Otherwise the caller
    re-serialises the parsed message.
    """
    number = str(old_id).encode()
    for key in (b'"id":', b'"id": '):
        needle = key + number
        pos = line.find(needle)
        while pos != -1:
            end = pos + len(needle)
            if _is_key_start(line, pos) and (end == len(line) or line[end] not in b"0123456789.eE"):
                value_start = pos + len(key)
                if _nothing_opens_before(line, pos) or _closes_object(line, end):
                    return line[:value_start] + new_id_json + line[end:]
            pos = line.find(needle, pos + 1)
    return None


def _is_key_start(line: bytes, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and line[i] in _WS:
        i -= 1
    return i >= 0 and line[i] in b"{,"


def _nothing_opens_before(line: bytes, pos: int) -> bool:
    start = 0
    while start < pos and line[start] in _WS:
        start += 1
    if start >= pos or line[start] != ord("{"):
        return False
    head = line[start + 1 : pos]
    return b"{" not in head and b"[" not in head


def _closes_object(line: bytes, end: int) -> bool:
    rest = line[end:].strip(_WS)
    return rest == b"}"
