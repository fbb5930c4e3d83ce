"""Deterministic champion/challenger assignment: FNV-1a of ``customerId + ":cc"`` into weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_FNV_OFFSET_32 = 0x811C9DC5
_FNV_PRIME_32 = 0x01000193
_MASK_32 = 0xFFFFFFFF


def fnv1a_32(text: str) -> int:
    """32-bit FNV-1a hash of ``text``'s UTF-8 bytes.

    Written by hand: it is a dozen lines, and the platform computes the same hash in
    TypeScript, so both sides must agree bit for bit (no library offers exactly this).

    References
    ----------
    .. [1] Fowler, Noll, Vo. The FNV Non-Cryptographic Hash Algorithm, IETF
       draft-eastlake-fnv (test vectors in its appendix).

    Examples
    --------
    >>> hex(fnv1a_32("")), hex(fnv1a_32("a")), hex(fnv1a_32("foobar"))
    ('0x811c9dc5', '0xe40c292c', '0xbf9cf968')
    """
    value = _FNV_OFFSET_32
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * _FNV_PRIME_32) & _MASK_32
    return value


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of a champion/challenger split: a model key and its traffic weight."""

    model_key: str
    weight: float


def assign_variant(customer_id: str, variants: Sequence[Variant]) -> Variant:
    """Pick the variant serving ``customer_id``: the same customer always gets the same one.

    The bucket is ``FNV-1a(customerId + ":cc") mod 10000`` scaled to the total weight, walked
    through the variants in order (champion first), so an 80/20 split sends 80 % of customers to
    the first variant.

    Raises
    ------
    ValueError
        No variant, a negative weight, or all weights zero.

    Examples
    --------
    >>> split = [Variant("model_bayesian_v3", 80), Variant("model_gb_v1", 20)]
    >>> assign_variant("customer-42", split) == assign_variant("customer-42", split)
    True
    """
    if not variants:
        raise ValueError("at least one variant is needed")
    if any(v.weight < 0 for v in variants):
        raise ValueError("weights must not be negative")
    total = sum(v.weight for v in variants)
    if total <= 0:
        raise ValueError("the weights must not all be zero")
    point = (fnv1a_32(f"{customer_id}:cc") % 10_000) / 10_000 * total
    cumulative = 0.0
    for variant in variants:
        cumulative += variant.weight
        if point < cumulative:
            return variant
    return variants[-1]
