"""DAG and task params: JSON-schema declarations with defaults, validated at trigger time.

The CLI and the web work from the serialized DAG, never the DAG file, so
:func:`validate_params` takes the dumped form (``Param.dump()``) and is pure.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import jsonschema

from cluster.errors import ParamValidationError


class _NotSet:
    """Marker for "no value", distinct from ``None`` which is a valid param value."""

    _instance: _NotSet | None = None

    def __new__(cls) -> _NotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOTSET"

    def __bool__(self) -> bool:
        return False


NOTSET: Any = _NotSet()

#: keys of a dumped param that are annotations, not constraints
_ANNOTATIONS = ("default", "description")


class Param:
    """One declared param: a default plus a JSON schema (``type``, ``enum``, ``minimum`` ...).

    :param default: the value used when the run's conf does not give one; leave it out
        to make the param required at trigger time.
    """

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any):
        self.value = default
        self.description = description
        self.schema = schema

    def __repr__(self) -> str:
        return f"Param({self.value!r}, {self.schema!r})"

    def resolve(self, value: Any = NOTSET) -> Any:
        """Return ``value`` (or the default) after validating it against the schema.

        :raises ParamValidationError: when there is no value or it breaks the schema.
        """
        final = self.value if value is NOTSET else value
        if final is NOTSET:
            raise ParamValidationError("No value passed and Param has no default value")
        _check_schema(self.schema, final)
        return copy.deepcopy(final)

    def dump(self) -> dict[str, Any]:
        """The JSON-schema form stored in the serialized DAG (``default`` only when set)."""
        data: dict[str, Any] = dict(self.schema)
        if self.value is not NOTSET:
            data["default"] = self.value
        if self.description is not None:
            data["description"] = self.description
        return data

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Param:
        schema = {k: v for k, v in data.items() if k not in _ANNOTATIONS}
        return cls(data.get("default", NOTSET), data.get("description"), **schema)


def _check_schema(schema: Mapping[str, Any], value: Any) -> None:
    try:
        jsonschema.validate(value, dict(schema), format_checker=jsonschema.FormatChecker())
    except jsonschema.ValidationError as exc:
        raise ParamValidationError(f"value {value!r} is invalid: {exc.message}") from exc
    except jsonschema.SchemaError as exc:
        raise ParamValidationError(f"the param's schema is invalid: {exc.message}") from exc


def as_param(value: Any) -> Param:
    """Wrap a plain value into a :class:`Param` (plain values are defaults with no schema)."""
    return value if isinstance(value, Param) else Param(value)


class ParamsDict(MutableMapping[str, Any]):
    """Names to :class:`Param`; reading a key gives the param's value, like Airflow."""

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self._params: dict[str, Param] = {k: as_param(v) for k, v in (params or {}).items()}

    def __getitem__(self, key: str) -> Any:
        return self._params[key].value

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, Param):
            self._params[key] = value
        elif key in self._params:
            self._params[key].value = value
        else:
            self._params[key] = Param(value)

    def __delitem__(self, key: str) -> None:
        del self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"ParamsDict({self._params!r})"

    def get_param(self, key: str) -> Param:
        return self._params[key]

    def merged(self, other: Mapping[str, Any] | None) -> ParamsDict:
        """A copy with ``other``'s params laid over these (task params over DAG params)."""
        result = ParamsDict()
        result._params = {**copy.deepcopy(self._params)}
        for key, value in (other or {}).items():
            if isinstance(other, ParamsDict):
                result._params[key] = copy.deepcopy(other.get_param(key))
            else:
                result[key] = copy.deepcopy(value)
        return result

    def dump(self) -> dict[str, dict[str, Any]]:
        return {key: param.dump() for key, param in self._params.items()}

    def validate_defaults(self) -> None:
        """Check every default that is set; params without default stay required.

        :raises ParamValidationError: naming the first param whose default is invalid.
        """
        for key, param in self._params.items():
            if param.value is NOTSET:
                continue
            try:
                param.resolve()
            except ParamValidationError as exc:
                raise ParamValidationError(f"param {key!r}: {exc}") from exc


def validate_params(declared: Mapping[str, Any], conf: Mapping[str, Any]) -> dict[str, Any]:
    """Merge declared defaults with a run's ``conf`` and validate every declared param.

    :param declared: ``{name: Param.dump()}`` as stored in the serialized DAG
        (:class:`Param` objects are accepted too).
    :param conf: the conf given when triggering; keys not declared pass through.
    :raises ParamValidationError: when a required param is missing or a value breaks
        its schema; the message names the param.
    """
    result: dict[str, Any] = dict(conf)
    for name, spec in declared.items():
        param = spec if isinstance(spec, Param) else Param.load(spec)
        try:
            result[name] = param.resolve(conf.get(name, NOTSET))
        except ParamValidationError as exc:
            raise ParamValidationError(f"param {name!r}: {exc}") from exc
    return result
