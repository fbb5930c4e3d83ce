"""Which frame column plays which role: named in the configuration, or found by common names."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlworker.analysis.columns import by_normalized_name
from mlworker.analysis.policies.config import PolicyConfig
from mlworker.errors import UnknownColumn

# Normalised (lower-case, alphanumerics only) names tried in order when a column is not named.
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "customer": (
        "customerid",
        "customer",
        "custid",
        "userid",
        "user",
        "clientid",
        "client",
        "subscriberid",
        "subscriber",
        "accountid",
        "memberid",
        "personid",
        "profileid",
        "visitorid",
    ),
    "timestamp": (
        "timestamp",
        "occurredat",
        "createdat",
        "eventtime",
        "eventtimestamp",
        "sentat",
        "senttime",
        "deliveredat",
        "contactedat",
        "contacttime",
        "interactiontime",
        "datetime",
        "time",
        "date",
        "eventdate",
        "ts",
    ),
    "outcome": (
        "outcome",
        "outcometype",
        "event",
        "eventtype",
        "eventname",
        "response",
        "responsetype",
        "result",
        "interactiontype",
        "action",
        "status",
    ),
    "channel": ("channel", "channelname", "channeltype", "channelid", "medium", "deliverychannel"),
    "offer": ("offerid", "offer", "offername", "offercode", "campaignid", "campaign"),
}
REQUIRED_ROLES = ("customer", "timestamp", "outcome")
OPTIONAL_ROLES = ("channel", "offer")


def _role_names(config: PolicyConfig) -> dict[str, str | None]:
    return {
        "customer": config.customer_column,
        "timestamp": config.timestamp_column,
        "outcome": config.outcome_column,
        "channel": config.channel_column,
        "offer": config.offer_column,
    }


def columns_needed(config: PolicyConfig) -> tuple[str, ...] | None:
    """Columns the analysis reads, so a loader can project; ``None`` when any is auto-detected.

    Examples
    --------
    >>> columns_needed(PolicyConfig(customerColumn="c", timestampColumn="t", outcomeColumn="o",
    ...                             channelColumn="ch", offerColumn="of"))
    ('c', 't', 'o', 'ch', 'of')
    >>> columns_needed(PolicyConfig()) is None
    True
    """
    names = tuple(_role_names(config).values())
    if any(name is None for name in names):
        return None
    return tuple(name for name in names if name is not None)


@dataclass(frozen=True, slots=True)
class ResolvedColumns:
    """The frame column playing each role (``None``: optional and absent)."""

    customer: str
    timestamp: str
    outcome: str
    channel: str | None
    offer: str | None


def resolve_columns(frame: pd.DataFrame, config: PolicyConfig) -> ResolvedColumns:
    """Find the column of every role: named ones must exist, the others by common names.

    Raises
    ------
    UnknownColumn
        A named column is missing, or a required one cannot be found
        (``field="config.<role>Column"``).
    """
    available = {str(column): column for column in frame.columns}
    shown = ", ".join(list(available)[:30])
    chosen: dict[str, str | None] = {}
    for role, name in _role_names(config).items():
        if name is None:
            continue
        if name not in available:
            raise UnknownColumn(
                f"config.{role}Column names {name!r}, which is not a column of the dataset "
                f"(columns: {shown}). Name an existing column or leave it out to auto-detect.",
                field=f"config.{role}Column",
                column=name,
            )
        chosen[role] = name
    taken = {name for name in chosen.values() if name is not None}
    by_normalized = by_normalized_name(available)
    for role in (*REQUIRED_ROLES, *OPTIONAL_ROLES):
        if role in chosen:
            continue
        found = next(
            (
                by_normalized[candidate]
                for candidate in COLUMN_CANDIDATES[role]
                if candidate in by_normalized and by_normalized[candidate] not in taken
            ),
            None,
        )
        if found is None and role in REQUIRED_ROLES:
            raise UnknownColumn(
                f"no {role} column found among: {shown}. Name it with config.{role}Column.",
                field=f"config.{role}Column",
                column=None,
            )
        chosen[role] = found
        if found is not None:
            taken.add(found)
    customer, timestamp, outcome = (chosen[role] for role in REQUIRED_ROLES)
    assert customer is not None and timestamp is not None and outcome is not None
    return ResolvedColumns(
        customer=customer,
        timestamp=timestamp,
        outcome=outcome,
        channel=chosen["channel"],
        offer=chosen["offer"],
    )
