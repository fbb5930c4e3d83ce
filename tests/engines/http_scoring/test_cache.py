from __future__ import annotations

import pytest

from mlworker.engines.http_scoring.cache import TTLCache, instance_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = TTLCache[str](ttl_s=60, max_entries=10, clock=clock)
    cache.put("k", "v")
    clock.now = 59.9
    assert cache.get("k") == "v"
    clock.now = 60.0
    assert cache.get("k") is None
    assert len(cache) == 0


def test_put_restarts_the_ttl() -> None:
    clock = FakeClock()
    cache = TTLCache[str](ttl_s=10, max_entries=10, clock=clock)
    cache.put("k", "old")
    clock.now = 8
    cache.put("k", "new")
    clock.now = 15
    assert cache.get("k") == "new"


def test_least_recently_used_is_evicted() -> None:
    cache = TTLCache[int](ttl_s=60, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
    cache.clear()
    assert len(cache) == 0


def test_instance_key_is_canonical_and_discriminating() -> None:
    base = {"customerId": "c1", "offerId": "o1", "age": 30}
    assert instance_key(base) == instance_key({"age": 30, "offerId": "o1", "customerId": "c1"})
    assert instance_key(base) != instance_key({**base, "offerId": "o2"})
    assert instance_key(base) != instance_key({**base, "age": "30"})
    assert len(instance_key(base)) == 64


@pytest.mark.parametrize(("ttl", "entries"), [(0, 1), (1, 0)])
def test_bad_parameters_are_refused(ttl: float, entries: int) -> None:
    with pytest.raises(ValueError):
        TTLCache[int](ttl_s=ttl, max_entries=entries)
