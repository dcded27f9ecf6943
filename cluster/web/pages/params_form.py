"""The trigger form: one input per declared param, and the form read back into a conf.

Pure functions over the params of a serialized DAG (``{name: Param.dump()}``). The
form only turns text into JSON values; whether a value is *valid* is decided once, by
:func:`cluster.actions.trigger` (``validate_params``), so the form can never accept
what the API or the CLI would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cluster.errors import ParamValidationError

PREFIX = "param."
Kind = Literal["integer", "number", "boolean", "enum", "json", "string"]
_BY_TYPE: dict[str, Kind] = {
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "array": "json",
    "object": "json",
    "string": "string",
}


@dataclass(frozen=True)
class ParamField:
    """How one param shows in the form; ``value`` is the input's text."""

    name: str
    kind: Kind
    value: str
    description: str | None = None
    required: bool = False
    checked: bool = False
    #: ``(JSON of the value, label)`` for enums
    options: list[tuple[str, str]] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def kind_of(spec: Mapping[str, Any]) -> Kind:
    """The input kind for a param: its enum, its JSON-schema type, else its default's type."""
    if isinstance(spec.get("enum"), list):
        return "enum"
    declared = spec.get("type")
    names = declared if isinstance(declared, list) else [declared]
    for name in names:
        if isinstance(name, str) and name in _BY_TYPE:
            return _BY_TYPE[name]
    default = spec.get("default")
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, int):
        return "integer"
    if isinstance(default, float):
        return "number"
    if isinstance(default, dict | list):
        return "json"
    return "string"


def fields_for(
    params: Mapping[str, Any], given: Mapping[str, str] | None = None
) -> list[ParamField]:
    """The form's fields, showing ``given`` (a submitted form) or else the defaults."""
    result = []
    for name, spec in params.items():
        kind = kind_of(spec)
        default = spec.get("default")
        has_default = "default" in spec
        submitted = None if given is None else given.get(PREFIX + name)
        shown = submitted if submitted is not None else _as_text(kind, default, has_default)
        result.append(
            ParamField(
                name=name,
                kind=kind,
                value=shown,
                description=spec.get("description"),
                required=not has_default,
                checked=(given is not None and submitted is not None)
                or (given is None and default is True),
                options=[(json.dumps(v), str(v)) for v in spec.get("enum", [])]
                if kind == "enum"
                else [],
            )
        )
    return result


def _as_text(kind: Kind, default: Any, has_default: bool) -> str:
    if not has_default or default is None:
        return "" if kind != "enum" else json.dumps(default)
    if kind in ("json", "enum"):
        return json.dumps(default, indent=2 if kind == "json" else None)
    return str(default)


def conf_from_form(params: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The run's conf from a submitted form: declared params, then the free JSON ``conf``.

    A blank input leaves the param out, so its default applies (or the trigger names
    it as required).

    :raises ParamValidationError: for text that is not a number, not JSON, ...
    """
    conf: dict[str, Any] = {}
    for name, spec in params.items():
        kind = kind_of(spec)
        raw = form.get(PREFIX + name)
        if kind == "boolean":
            conf[name] = raw is not None
            continue
        if raw is None or (not raw.strip() and kind != "string"):
            continue
        if kind == "string" and not raw and spec.get("default") is None:
            continue
        conf[name] = _parse(name, kind, raw)
    extra = (form.get("conf") or "").strip()
    if extra:
        value = _json(name="conf", text=extra)
        if not isinstance(value, dict):
            raise ParamValidationError('conf must be a JSON object, like {"rows": 5}')
        conf.update(value)
    return conf


def _parse(name: str, kind: Kind, raw: str) -> Any:
    text = raw.strip()
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ParamValidationError(f"param {name!r}: {text!r} is not a whole number") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ParamValidationError(f"param {name!r}: {text!r} is not a number") from None
        return int(number) if number.is_integer() and "." not in text else number
    if kind in ("json", "enum"):
        return _json(name=name, text=text)
    return raw


def _json(*, name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamValidationError(f"param {name!r}: not valid JSON ({exc.msg})") from None
