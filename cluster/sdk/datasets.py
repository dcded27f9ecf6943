"""Datasets: what a task produces (``outlets``) and what a DAG waits for (``schedule=[...]``).

Airflow 2.10's names (``Dataset``, ``DatasetAlias``, ``DatasetAll``, ``DatasetAny``,
``Metadata``) with Airflow 3's (``Asset``, ``AssetAlias``, ...) as aliases. A condition
is a tree of datasets joined by ``&`` (all) and ``|`` (any); :func:`condition_to_dict`
gives its JSON form, which the scheduler evaluates with :func:`evaluate_condition`
without importing this module's classes (it works on the dicts, see
:mod:`cluster.policy.datasets`). URIs are sanitized as Airflow does (scheme lower-cased,
trailing slashes, fragments and auth dropped, query sorted) so that one dataset written
two ways is one dataset.

Pure and standard-library only: every DAG file imports it.
"""

from __future__ import annotations

import os
import urllib.parse
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from cluster.errors import DagDefinitionError

__all__ = [
    "BaseDataset",
    "Dataset",
    "DatasetAlias",
    "DatasetAll",
    "DatasetAny",
    "Metadata",
    "condition_from_dict",
    "condition_to_dict",
    "event_key",
]

#: the longest URI Airflow's ``dataset`` table holds
MAX_URI_LENGTH = 3000


def sanitize_uri(uri: str) -> str:
    """``uri`` as Airflow stores it; one dataset spelled two ways becomes one key.

    :raises ValueError: for an empty, blank or non-ASCII URI, or the reserved
        ``airflow://`` scheme (Airflow's messages).
    """
    if not uri:
        raise ValueError("Dataset URI cannot be empty")
    if uri.isspace():
        raise ValueError("Dataset URI cannot be just whitespace")
    if not uri.isascii():
        raise ValueError("Dataset URI must only consist of ASCII characters")
    parsed = urllib.parse.urlsplit(uri)
    if not parsed.scheme and not parsed.netloc:
        return uri
    scheme = parsed.scheme.lower()
    if not scheme or scheme.startswith("x-"):
        return uri
    if scheme == "airflow":
        raise ValueError("Dataset scheme 'airflow' is reserved")
    _, auth, netloc = parsed.netloc.rpartition("@")
    if auth:
        warnings.warn(
            "A dataset URI should not contain auth info (e.g. username or password). "
            "It has been automatically dropped.",
            UserWarning,
            stacklevel=3,
        )
    query = urllib.parse.urlencode(sorted(urllib.parse.parse_qsl(parsed.query)))
    parsed = parsed._replace(
        scheme=scheme, netloc=netloc, path=parsed.path.rstrip("/") or "/", query=query, fragment=""
    )
    return urllib.parse.urlunsplit(parsed)


class BaseDataset:
    """Anything ``DAG(schedule=...)`` accepts as a data condition; ``&`` and ``|`` combine."""

    def __bool__(self) -> bool:
        return True

    def __or__(self, other: object) -> BaseDataset:
        if not isinstance(other, BaseDataset):
            return NotImplemented
        return DatasetAny(self, other)

    def __and__(self, other: object) -> BaseDataset:
        if not isinstance(other, BaseDataset):
            return NotImplemented
        return DatasetAll(self, other)

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        """Each dataset of the condition once, by URI, in first-seen order."""
        raise NotImplementedError

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        raise NotImplementedError

    def evaluate(self, statuses: dict[str, bool]) -> bool:
        """Whether the condition holds when ``statuses[uri]`` says which datasets are ready."""
        return evaluate_condition(condition_to_dict(self), statuses)


class Dataset(os.PathLike[str], BaseDataset):
    """A piece of data by URI: a task lists it in ``outlets``, a DAG waits for it."""

    def __init__(self, uri: str, extra: dict[str, Any] | None = None) -> None:
        if not isinstance(uri, str):
            raise DagDefinitionError(f"a dataset URI must be a string, not {uri!r}")
        self.uri = sanitize_uri(uri)
        if len(self.uri) > MAX_URI_LENGTH:
            raise ValueError(f"Dataset URI is longer than {MAX_URI_LENGTH} characters")
        self.extra = extra

    def __fspath__(self) -> str:
        return self.uri

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Dataset):
            return self.uri == other.uri
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.uri)

    def __repr__(self) -> str:
        return f"Dataset(uri={self.uri!r}, extra={self.extra!r})"

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        yield self.uri, self

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        return iter(())


class DatasetAlias(BaseDataset):
    """A name a task resolves to datasets while it runs (``outlet_events[alias].add(...)``).

    A DAG scheduled on an alias waits on the datasets the alias has resolved to so far.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise DagDefinitionError(f"a dataset alias needs a non-empty name, not {name!r}")
        self.name = name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DatasetAlias):
            return self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"DatasetAlias(name={self.name!r})"

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        return iter(())

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        yield self


class _BooleanCondition(BaseDataset):
    """All or any of several conditions."""

    kind = ""

    def __init__(self, *objects: BaseDataset) -> None:
        if not all(isinstance(o, BaseDataset) for o in objects):
            raise TypeError("expect dataset expressions in condition")
        self.objects = list(objects)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        seen: set[str] = set()
        for obj in self.objects:
            for uri, dataset in obj.iter_datasets():
                if uri not in seen:
                    seen.add(uri)
                    yield uri, dataset

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        for obj in self.objects:
            yield from obj.iter_dataset_aliases()


class DatasetAny(_BooleanCondition):
    """Ready when any of its conditions is (``a | b``)."""

    kind = "any"

    def __or__(self, other: object) -> BaseDataset:
        if not isinstance(other, BaseDataset):
            return NotImplemented
        return DatasetAny(*self.objects, other)


class DatasetAll(_BooleanCondition):
    """Ready when all of its conditions are (``a & b``, and a plain list in ``schedule``)."""

    kind = "all"

    def __and__(self, other: object) -> BaseDataset:
        if not isinstance(other, BaseDataset):
            return NotImplemented
        return DatasetAll(*self.objects, other)


class Metadata:
    """Yielded by a producing task to attach ``extra`` to the event of ``target``
    (optionally through ``alias``, which then resolves to ``target``)."""

    def __init__(
        self,
        target: str | Dataset,
        extra: dict[str, Any],
        alias: DatasetAlias | str | None = None,
    ) -> None:
        self.uri = event_key(target)
        self.extra = extra
        self.alias_name = alias.name if isinstance(alias, DatasetAlias) else alias


def event_key(value: str | Dataset | DatasetAlias) -> str:
    """The key of ``outlet_events[value]`` / ``inlet_events[value]``: a URI or an alias name."""
    if isinstance(value, DatasetAlias):
        return value.name
    if isinstance(value, Dataset):
        return value.uri
    return sanitize_uri(str(value))


# --- the JSON form the scheduler evaluates ----------------------------------------------


def condition_to_dict(condition: BaseDataset) -> dict[str, Any]:
    """``{"uri": ...}``, ``{"alias": ...}`` or ``{"all"|"any": [...]}``."""
    if isinstance(condition, Dataset):
        return {"uri": condition.uri}
    if isinstance(condition, DatasetAlias):
        return {"alias": condition.name}
    if isinstance(condition, _BooleanCondition):
        return {condition.kind: [condition_to_dict(o) for o in condition.objects]}
    raise DagDefinitionError(f"not a dataset condition: {condition!r}")


def condition_from_dict(data: dict[str, Any]) -> BaseDataset:
    """Rebuild a condition from :func:`condition_to_dict` output."""
    if "uri" in data:
        return Dataset(data["uri"])
    if "alias" in data:
        return DatasetAlias(data["alias"])
    if "all" in data:
        return DatasetAll(*(condition_from_dict(d) for d in data["all"]))
    if "any" in data:
        return DatasetAny(*(condition_from_dict(d) for d in data["any"]))
    raise DagDefinitionError(f"unknown dataset condition {data!r}: re-serialize the DAG")


def evaluate_condition(
    data: dict[str, Any],
    statuses: dict[str, bool],
    aliases: dict[str, Iterable[str]] | None = None,
) -> bool:
    """Whether the condition ``data`` holds.

    :param statuses: URI → whether an event for it is queued for this consumer.
    :param aliases: alias name → the URIs it has resolved to; an alias holds when any
        of them does (Airflow's ``_DatasetAliasCondition``), never when it has none.
    """
    if "uri" in data:
        return statuses.get(data["uri"], False)
    if "alias" in data:
        return any(statuses.get(uri, False) for uri in (aliases or {}).get(data["alias"], ()))
    if "all" in data:
        return all(evaluate_condition(d, statuses, aliases) for d in data["all"])
    return any(evaluate_condition(d, statuses, aliases) for d in data["any"])


def condition_uris(data: dict[str, Any]) -> list[str]:
    """The URIs a condition names directly, each once, in order."""
    if "uri" in data:
        return [data["uri"]]
    out: list[str] = []
    for child in data.get("all", data.get("any", [])):
        out.extend(u for u in condition_uris(child) if u not in out)
    return out


def condition_aliases(data: dict[str, Any]) -> list[str]:
    """The alias names a condition names, each once, in order."""
    if "alias" in data:
        return [data["alias"]]
    out: list[str] = []
    for child in data.get("all", data.get("any", [])):
        out.extend(a for a in condition_aliases(child) if a not in out)
    return out


def as_condition(schedule: BaseDataset | Iterable[BaseDataset]) -> BaseDataset:
    """A ``schedule=[a, b]`` list means all of them, as in Airflow.

    :raises DagDefinitionError: when the list holds something that is not a dataset.
    """
    if isinstance(schedule, BaseDataset):
        return schedule
    items = list(schedule)
    if not items or not all(isinstance(i, BaseDataset) for i in items):
        raise DagDefinitionError("all elements in 'schedule' should be datasets")
    return DatasetAll(*items)


def outlet_to_dict(outlet: object) -> dict[str, Any] | None:
    """A task's outlet as JSON; ``None`` for outlets that are not datasets (Airflow ignores them)."""
    if isinstance(outlet, Dataset):
        return {"uri": outlet.uri, "extra": outlet.extra or {}}
    if isinstance(outlet, DatasetAlias):
        return {"alias": outlet.name}
    return None
