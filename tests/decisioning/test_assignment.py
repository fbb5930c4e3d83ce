"""FNV-1a against published vectors; champion/challenger splits are stable and proportional."""

from __future__ import annotations

import pytest

from mlworker.decisioning import Variant, assign_variant, fnv1a_32

# 32-bit FNV-1a vectors from the FNV reference test suite (also in draft-eastlake-fnv).
VECTORS = {"": 0x811C9DC5, "a": 0xE40C292C, "foobar": 0xBF9CF968}


@pytest.mark.parametrize(("text", "expected"), VECTORS.items())
def test_published_vectors(text: str, expected: int) -> None:
    assert fnv1a_32(text) == expected


def test_utf8_bytes_are_hashed() -> None:
    assert fnv1a_32("é") == fnv1a_32("\u00e9") != fnv1a_32("e")
    assert 0 <= fnv1a_32("x" * 10_000) < 2**32


def test_an_80_20_split_is_stable_and_proportional() -> None:
    split = [Variant("model_bayesian_v3", 80), Variant("model_gb_v1", 20)]
    customers = [f"cust-{i}" for i in range(20_000)]
    first = [assign_variant(c, split).model_key for c in customers]
    assert first == [assign_variant(c, split).model_key for c in customers]
    share = first.count("model_gb_v1") / len(first)
    assert share == pytest.approx(0.2, abs=0.015)


def test_the_bucket_is_the_hash_of_customer_and_cc() -> None:
    split = [Variant("champion", 50), Variant("challenger", 50)]
    for customer in ("a", "b", "c", "d", "e", "f"):
        bucket = fnv1a_32(f"{customer}:cc") % 10_000
        expected = "champion" if bucket < 5_000 else "challenger"
        assert assign_variant(customer, split).model_key == expected


def test_zero_weight_is_never_served_and_bad_splits_are_refused() -> None:
    split = [Variant("on", 100), Variant("off", 0)]
    assert {assign_variant(f"c{i}", split).model_key for i in range(2_000)} == {"on"}
    with pytest.raises(ValueError):
        assign_variant("c", [])
    with pytest.raises(ValueError):
        assign_variant("c", [Variant("a", -1), Variant("b", 2)])
    with pytest.raises(ValueError):
        assign_variant("c", [Variant("a", 0)])
