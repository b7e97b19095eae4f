"""A tiny, escaping HTML builder: everything is text unless it is already `Html`.

Pages are built from literal templates filled with values; every value is escaped
(quotes included, so it is safe inside attributes) unless it is markup we built
ourselves. There is no way to put raw text from the state into a page.
"""

from __future__ import annotations

import html as _html
from typing import Any, Iterable

MISSING = "—"


class Html(str):
    """Markup that is already safe (built by this module from escaped parts)."""

    __slots__ = ()

    # Concatenation keeps it markup and escapes whatever text is added to it.
    def __add__(self, other: object) -> "Html":
        return Html(str.__add__(self, esc(other)))

    def __radd__(self, other: object) -> "Html":
        return Html(str.__add__(esc(other), self))


def esc(value: Any) -> Html:
    """`value` as safe markup: escaped text, or itself if it is already Html."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    return Html(_html.escape(str(value), quote=True))


def show(value: Any) -> Html:
    """Like esc, but a missing value (None, "", empty list) shows as a dash."""
    if value is None or value == "" or value == [] or value == {}:
        return Html(f'<span class="missing">{MISSING}</span>')
    if isinstance(value, bool):
        return Html("yes" if value else "no")
    return esc(value)


def html(template: str, *args: Any, **kwargs: Any) -> Html:
    """`template` (a trusted literal) with `{}` fields filled by escaped values."""
    return Html(template.format(*(esc(a) for a in args), **{k: esc(v) for k, v in kwargs.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))
