"""Which column plays which role: configured names are checked, the rest found by name."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from mlworker.analysis.columns import by_normalized_name, normalized_name
from mlworker.analysis.content.config import ContentConfig
from mlworker.data.profile import infer_kind
from mlworker.data.values import ColumnKind
from mlworker.errors import UnknownColumn

# Normalised names (lower case, letters and digits only), most specific first.
_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "idColumn": (
        "creativeid",
        "creative",
        "creativename",
        "adid",
        "contentid",
        "variantid",
        "messageid",
        "assetid",
        "templateid",
        "id",
    ),
    "channelColumn": ("channel", "channelname", "medium", "platform", "network", "placement"),
    "impressionsColumn": (
        "impressions",
        "impression",
        "imps",
        "views",
        "sends",
        "sent",
        "delivered",
        "deliveries",
        "reach",
    ),
    "clicksColumn": ("clicks", "click", "clickcount", "linkclicks", "taps"),
    "conversionsColumn": (
        "conversions",
        "conversion",
        "conv",
        "orders",
        "purchases",
        "signups",
        "leads",
    ),
    "revenueColumn": (
        "revenue",
        "sales",
        "gmv",
        "conversionvalue",
        "purchasevalue",
        "income",
    ),
    "timestampColumn": (
        "date",
        "day",
        "timestamp",
        "datetime",
        "time",
        "reportdate",
        "eventdate",
        "sentat",
        "sendtime",
        "sentdate",
    ),
}
# Fallback when no name matches exactly: a normalised name matching one of these; rates and
# values are not counts ("click_through_rate" is no clicks column, "conversion_value" is revenue).
_ROLE_PATTERNS: dict[str, re.Pattern[str]] = {
    "idColumn": re.compile(r"creativeid"),
    "channelColumn": re.compile(r"channel"),
    "impressionsColumn": re.compile(r"^(?!.*(rate|per|share)).*impression"),
    "clicksColumn": re.compile(r"^(?!.*(rate|per|share)).*click"),
    "conversionsColumn": re.compile(r"^(?!.*(rate|per|share|value)).*conversion"),
    "revenueColumn": re.compile(r"^(?!.*(rate|per|share)).*revenue"),
    "timestampColumn": re.compile(r"timestamp|date$|^date"),
}
_REQUIRED = ("idColumn", "impressionsColumn", "clicksColumn")
_TEXT_PARTS = (
    "title",
    "subject",
    "headline",
    "heading",
    "body",
    "cta",
    "calltoaction",
    "description",
    "text",
    "copy",
    "message",
    "caption",
    "preheader",
    "tagline",
    "snippet",
)


@dataclass(frozen=True, slots=True)
class ContentColumns:
    """The resolved column of each role (``None``: the data has no such column)."""

    id: str
    channel: str | None
    impressions: str
    clicks: str
    conversions: str | None
    revenue: str | None
    timestamp: str | None
    text_fields: tuple[str, ...]


def columns_needed(config: ContentConfig) -> tuple[str, ...] | None:
    """Columns the analysis reads, or ``None`` when any must be found among all columns.

    Every role left ``None`` is auto-detected (an optional one may turn out absent), so only a
    config that names every role and its text fields can narrow what is loaded.

    Examples
    --------
    >>> columns_needed(ContentConfig())
    >>> config = ContentConfig(
    ...     id_column="id", channel_column="ch", impressions_column="imp", clicks_column="clk",
    ...     conversions_column="cv", revenue_column="rev", timestamp_column="day",
    ...     text_fields=["title"],
    ... )
    >>> columns_needed(config)
    ('id', 'ch', 'imp', 'clk', 'cv', 'rev', 'day', 'title')
    """
    roles = list(config.role_columns().values())
    if config.text_fields is None or any(name is None for name in roles):
        return None
    return tuple(name for name in roles if name is not None) + tuple(config.text_fields)


def _is_stringish(series: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(series.dtype)
        or pd.api.types.is_string_dtype(series.dtype)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def _detect(role: str, available: list[str]) -> str | None:
    by_normal = by_normalized_name(available)
    for candidate in _ROLE_NAMES[role]:
        if candidate in by_normal:
            return by_normal[candidate]
    pattern = _ROLE_PATTERNS[role]
    for name in available:
        if pattern.search(normalized_name(name)):
            return name
    return None


def _detect_text_fields(frame: pd.DataFrame, taken: set[str]) -> tuple[str, ...]:
    found = []
    for name in frame.columns:
        if name in taken or not _is_stringish(frame[name]):
            continue
        key = normalized_name(name)
        if key.endswith("id") or key in ("url", "link", "image", "imageurl"):
            continue
        if any(part in key for part in _TEXT_PARTS) or infer_kind(frame[name]) is ColumnKind.TEXT:
            found.append(name)
    return tuple(found)


def resolve_columns(frame: pd.DataFrame, config: ContentConfig) -> ContentColumns:
    """Check the configured columns exist and find the others by their common names.

    Raises
    ------
    UnknownColumn
        A configured column is missing, or a required one (id, impressions, clicks) cannot be
        found; ``field`` names the config member (``config.clicksColumn``,
        ``config.textFields.1``).
    """
    columns = [str(name) for name in frame.columns]
    resolved: dict[str, str | None] = {}
    for role, name in config.role_columns().items():
        if name is not None and name not in columns:
            raise UnknownColumn(
                f"column {name!r} (config.{role}) is not in the dataset; "
                f"its columns are {columns[:30]}",
                field=f"config.{role}",
                column=name,
            )
        resolved[role] = name
    for role in resolved:
        if resolved[role] is None:
            taken = {value for value in resolved.values() if value is not None}
            resolved[role] = _detect(role, [name for name in columns if name not in taken])
    for role in _REQUIRED:
        if resolved[role] is None:
            raise UnknownColumn(
                f"no {role.removesuffix('Column')} column found among {columns[:30]}; "
                f"name it with config.{role}",
                field=f"config.{role}",
            )
    taken = {value for value in resolved.values() if value is not None}
    if config.text_fields is None:
        text_fields = _detect_text_fields(frame, taken)
    else:
        for position, name in enumerate(config.text_fields):
            if name not in columns:
                raise UnknownColumn(
                    f"text field {name!r} is not in the dataset; its columns are {columns[:30]}",
                    field=f"config.textFields.{position}",
                    column=name,
                )
        text_fields = tuple(config.text_fields)
    return ContentColumns(
        id=str(resolved["idColumn"]),
        channel=resolved["channelColumn"],
        impressions=str(resolved["impressionsColumn"]),
        clicks=str(resolved["clicksColumn"]),
        conversions=resolved["conversionsColumn"],
        revenue=resolved["revenueColumn"],
        timestamp=resolved["timestampColumn"],
        text_fields=text_fields,
    )
