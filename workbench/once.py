"""`OnceCache`: values built once per key, safe to share between threads.

The one way derived data is cached in the workbench (variants, results, summaries, calibrations,
a model's float `.tflite`): two threads asking for the same key wait for one build; threads
asking for other keys do not wait. A build that raises stores nothing, so the next ask retries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
_MISSING = object()


class OnceCache(Generic[V]):
    """A thread-safe memo: `get(key, build)` runs `build()` at most once per key."""

    def __init__(self) -> None:
        self._values: dict[Hashable, V] = {}
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self.builds = 0  # how many times a build ran to completion

    def __repr__(self) -> str:
        return f"OnceCache({len(self)} values, {self.builds} builds)"

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._values

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value stored for `key`; on the first ask, `build()` makes and stores it."""
        with self._lock:
            found = self._values.get(key, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[return-value]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one build per key; other keys do not wait
            with self._lock:
                found = self._values.get(key, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[return-value]
            value = build()
            with self._lock:
                self._values[key] = value
                self.builds += 1
            return value

    def peek(self, key: Hashable) -> V | None:
        """The value stored for `key`, or None when it was not built yet (never builds)."""
        with self._lock:
            return self._values.get(key)

    def values(self) -> list[V]:
        """The values built so far, in the order they were built."""
        with self._lock:
            return list(self._values.values())
