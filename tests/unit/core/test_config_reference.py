"""docs/configuration.md documents every setting of cluster.config, and nothing else.

Each setting has an entry headed ``### `section.key` `` that gives its environment
variable and its built-in default (as ``Default: `value` `` in TOML form) and says
``secret`` when the setting is masked. Any ``section.key`` or ``TRADEWIND__…`` the page
mentions must exist (``_file`` / ``_cmd`` forms included), so a renamed or removed
setting cannot linger in the documentation.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from cluster.config import ENV_PREFIX, Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
ENTRY_HEADING = re.compile(r"^### `([a-z_]+)\.([a-z0-9_]+)`\s*$", re.MULTILINE)
ANY_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
DEFAULT = re.compile(r"Default: `([^`]*)`")
TYPE = re.compile(r"Type: ([^·\n]*)")
ENV_NAME = re.compile(ENV_PREFIX + r"([A-Z0-9_]+?)__([A-Z0-9_]+)")
INDIRECT = ("_file", "_cmd")


def documented_fields() -> dict[str, dataclasses.Field[Any]]:
    """Every field of every section dataclass of :class:`Settings`, keyed ``section.key``."""
    found: dict[str, dataclasses.Field[Any]] = {}
    for section, hint in typing.get_type_hints(Settings).items():
        if not dataclasses.is_dataclass(hint):
            continue  # ``home``: from $TRADEWIND_HOME, not a setting of a section
        for f in dataclasses.fields(hint):
            found[f"{section}.{f.name}"] = f
    return found


def sections() -> set[str]:
    return {name.split(".")[0] for name in documented_fields()}


def doc_text() -> str:
    assert DOC.is_file(), f"{DOC} is missing: the configuration reference must exist"
    return DOC.read_text()


def entries(text: str) -> dict[str, str]:
    """``section.key`` → the text of its entry, up to the next heading."""
    found: dict[str, str] = {}
    for match in ENTRY_HEADING.finditer(text):
        rest = text[match.end() :]
        following = ANY_HEADING.search(rest)
        found[f"{match[1]}.{match[2]}"] = rest[: following.start() if following else None]
    return found


def toml_value(value: Any) -> str:
    """``value`` as ``tradewind.toml`` (and ``tradewind config show``) writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def built_in_default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def base_key(key: str) -> str:
    for suffix in INDIRECT:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def test_settings_are_found() -> None:
    # guards the other tests: an empty field list would make them pass vacuously
    assert {"core.parallelism", "metastore.url", "webserver.secret_key"} <= set(documented_fields())


def test_every_setting_has_an_entry() -> None:
    missing = sorted(set(documented_fields()) - set(entries(doc_text())))
    assert not missing, f"settings without a '### `section.key`' entry in {DOC.name}: {missing}"


def test_every_entry_is_a_setting() -> None:
    unknown = sorted(set(entries(doc_text())) - set(documented_fields()))
    assert not unknown, f"{DOC.name} has entries for settings that do not exist: {unknown}"


def test_every_mentioned_setting_exists() -> None:
    names = "|".join(sorted(sections()))
    mention = re.compile(rf"(?<![\w.])({names})\.([a-z][a-z0-9_]*)")
    fields = documented_fields()
    unknown = sorted(
        {
            f"{section}.{key}"
            for section, key in mention.findall(doc_text())
            if f"{section}.{base_key(key)}" not in fields
        }
    )
    assert not unknown, f"{DOC.name} mentions settings that do not exist: {unknown}"


def test_every_mentioned_environment_variable_exists() -> None:
    fields = documented_fields()
    unknown = sorted(
        {
            f"{ENV_PREFIX}{section}__{key}"
            for section, key in ENV_NAME.findall(doc_text())
            if f"{section.lower()}.{base_key(key.lower())}" not in fields
        }
    )
    assert not unknown, f"{DOC.name} mentions environment variables of no setting: {unknown}"


@pytest.mark.parametrize("name", sorted(documented_fields()))
def test_entry_gives_environment_variable_default_and_secrecy(name: str) -> None:
    entry = entries(doc_text()).get(name)
    if entry is None:
        pytest.fail(f"{name} has no entry in {DOC.name}")
    section, key = name.split(".")
    f = documented_fields()[name]
    problems = []
    variable = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
    if variable not in entry:
        problems.append(f"does not name its environment variable {variable}")
    default = DEFAULT.search(entry)
    expected = toml_value(built_in_default(f))
    if default is None:
        problems.append(f"gives no 'Default: `{expected}`'")
    elif default[1] != expected:
        problems.append(f"gives the default `{default[1]}`, but the code says `{expected}`")
    kind = TYPE.search(entry)
    secret = bool(f.metadata.get("secret"))
    if kind is None:
        problems.append("gives no 'Type: ...'")
    elif secret != ("secret" in kind[1]):
        state = "is" if secret else "is not"
        problems.append(f"{state} a secret: its Type must say so only when it is one")
    assert not problems, f"{DOC.name}, entry {name}: " + "; ".join(problems)
