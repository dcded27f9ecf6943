"""Path converters whose patterns already refuse what their checks would.

Werkzeug matches a rule's pattern and method first and checks an ``int`` segment's
``max`` only after: a number past it (``.../taskInstances/t/2147483648``) that matches a
GET rule's pattern turns a PATCH of the same path into a 405 naming GET, where no rule
exists for it at all (a 404). With ``max`` in the pattern itself, no rule matches.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map


class BoundedIntConverter(IntegerConverter):
    """Werkzeug's ``int`` converter; an unsigned ``max`` is part of its pattern."""

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, max, signed)
        if max is not None and not signed and not fixed_digits:
            self.regex = at_most(max)


def at_most(limit: int) -> str:
    """A pattern of the decimal numbers from 0 to ``limit`` (leading zeros allowed)."""
    digits = str(limit)
    shorter = [rf"\d{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    same_length = [
        f"{digits[:i]}[0-{int(d) - 1}]"
        + (rf"\d{{{len(digits) - i - 1}}}" if i < len(digits) - 1 else "")
        for i, d in enumerate(digits)
        if d != "0"
    ]
    return "(?:" + "|".join([*shorter, *same_length, digits]) + ")"
