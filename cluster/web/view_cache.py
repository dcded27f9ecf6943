"""Views this process built a moment ago, each with the stamps of the rows it came from.

A cached view is only reused after the caller read the current stamps of what it
shows and found them equal to the stored ones: the codes of its queries' rows
(:mod:`cluster.web.stamps`, the API's DAG list) or the metastore's change counters
(:mod:`cluster.metastore.change_counters`, the DAGs page). So the cache never serves
stale data and needs no expiry; a change made anywhere (another webserver, the
scheduler, a DAG file parse) shows at once. Entries are bounded: the
least recently used go first. Safe to share between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cluster.web.stamps import Stamp

#: views kept at most per cache
MAX_ENTRIES = 64

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    """One view and the stamps (one per query) of the rows it was built from."""

    stamps: tuple[Stamp, ...]
    value: V


class ViewCache(Generic[V]):
    """Views by key (what the request asked for: filters, page, role)."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Cached[V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Cached[V] | None:
        """The view stored for ``key``; the caller checks its stamps before using it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, stamps: tuple[Stamp, ...], value: V) -> None:
        """Keep ``value`` for ``key``, built from rows whose stamps are ``stamps``."""
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = Cached(stamps, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
