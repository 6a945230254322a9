"""Results kept per rule set, assumption set and data set, for every front end to share.

A review takes seconds and depends only on the rules, the assumptions in force and (for the
population impact) the patients; the chat, the review page and the CLI ask the same
question again and again. A `Memo` keeps the most recent answers by key, for the threads of
one process (the app's sessions): a caller asking for an answer another thread is working
out waits for it instead of computing it twice.

Keys hold identities, not contents: a knowledge base is immutable (an edited rule set is
another one) and is held by the entry, so that its id cannot be reused while the entry
lives; a data set is only referred to weakly (an upload is not kept alive by the cache
after its session dropped it), and an entry whose data set is gone no longer matches.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Memo"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    value: T
    held: tuple[object, ...]  # kept alive by the entry (the knowledge base)
    weak: tuple[weakref.ref[object], ...]  # must still be these objects (the data set)

    def matches(self, held: tuple[object, ...], weak: tuple[object, ...]) -> bool:
        return all(a is b for a, b in zip(self.held, held, strict=True)) and all(
            r() is o for r, o in zip(self.weak, weak, strict=True)
        )


class Memo(Generic[T]):
    """The last `keep` values by key, computed once even when threads ask at the same time."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self._working: dict[Hashable, threading.Lock] = {}
        self.computed = 0  # how many values were worked out (for tests and benchmarks)

    def get(
        self,
        key: Hashable,
        compute: Callable[[], T],
        held: tuple[object, ...] = (),
        weak: tuple[object, ...] = (),
    ) -> T:
        """The value for `key` (whose ids stand for `held` and `weak`), computed if missing."""
        found = self._lookup(key, held, weak)
        if found is not None:
            return found.value
        with self._lock:
            working = self._working.setdefault(key, threading.Lock())
        with working:  # one thread works it out; the others wait and find it
            found = self._lookup(key, held, weak)
            if found is not None:
                return found.value
            try:
                value = compute()
                entry = _Entry(value, held, tuple(weakref.ref(o) for o in weak))
                with self._lock:
                    self.computed += 1
                    self._entries[key] = entry
                    while len(self._entries) > self.keep:
                        self._entries.popitem(last=False)
            finally:
                with self._lock:
                    self._working.pop(key, None)
        return value

    def _lookup(self, key: Hashable, held: tuple[object, ...], weak: tuple[object, ...]) -> _Entry[T] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if not entry.matches(held, weak):  # an id reused by another data set
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
