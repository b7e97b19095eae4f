"""A value that must never be shown: environment values of MCP servers.

Env values are wrapped in `Secret` from the moment they are read until the
container-agent hands them to Docker. Its str() and repr() are masked, it does not
compare equal to plain strings by accident, and msgpack refuses to encode it, so a
secret cannot slip into a log line, an error text or a PUB message unnoticed.
"""

from __future__ import annotations

MASK = "***"
# Values this short are not redacted from log text: masking every "1" or "yes" would
# garble logs, and such values are not credentials anyway.
MIN_REDACTED_LENGTH = 6
_known_values: set[str] = set()


def known_values() -> frozenset[str]:
    """Every secret value seen by this process, for the log redaction safety net."""
    return frozenset(_known_values)


def redact(text: str) -> str:
    """`text` with every known secret value replaced by the mask."""
    for value in sorted(_known_values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


# Text shown to people (stderr tails, quoted errors) is cut at this many characters.
MAX_SHOWN_CHARS = 2000


def shown(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` made safe to show: masked first, then cut. Cutting first would leave the
    start of a secret that straddles the cut unmasked."""
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + " [cut]"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        if len(value) >= MIN_REDACTED_LENGTH:
            _known_values.add(value)

    def reveal(self) -> str:
        """The real value: call only where it goes to Docker."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # no pickling a secret to disk
        raise TypeError("a Secret cannot be pickled")
