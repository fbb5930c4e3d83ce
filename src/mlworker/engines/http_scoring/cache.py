"""A bounded time-to-live cache of endpoint answers, keyed by the instance sent.

The key is a hash of the instance's canonical JSON (sorted keys, no whitespace), so the same
customer-offer pair with the same attributes is answered from memory until its entry expires,
whatever other candidates it is scored alongside. Least recently used entries are evicted once
``max_entries`` is reached.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

V = TypeVar("V")


def instance_key(instance: Mapping[str, Any]) -> str:
    """SHA-256 of the instance's canonical JSON.

    Examples
    --------
    >>> instance_key({"b": 1, "a": "x"}) == instance_key({"a": "x", "b": 1})
    True
    >>> instance_key({"a": 1}) == instance_key({"a": 1.5})
    False
    """
    canonical = json.dumps(instance, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class TTLCache(Generic[V]):
    """Thread-safe LRU cache whose entries expire ``ttl_s`` seconds after they were stored.

    Parameters
    ----------
    ttl_s
        Lifetime of an entry in seconds.
    max_entries
        Capacity; the least recently used entry is evicted beyond it.
    clock
        Monotonic time source in seconds (tests pass a fake one).

    Examples
    --------
    >>> now = [0.0]
    >>> cache = TTLCache[float](ttl_s=60, max_entries=2, clock=lambda: now[0])
    >>> cache.put("a", 0.3)
    >>> cache.get("a")
    0.3
    >>> now[0] = 60.0
    >>> cache.get("a") is None
    True
    """

    def __init__(
        self, *, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: str) -> V | None:
        """Return the live value under ``key``, or ``None`` (an expired entry is dropped)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if self._clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: V) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` seconds, evicting the oldest if full."""
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
