"""Parameters of the content analysis: the ``config`` of ``POST /analyze/content``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

Target = Literal["ctr", "cvr", "rpi"]


class ContentConfig(BaseModel):
    """Which columns hold what, the rate to explain, and how much to report.

    Column names left ``None`` are found by common names (case and separators ignored):
    ``creativeId``/``creative_id``/``id``…, ``channel``/``medium``…, ``impressions``/``views``/
    ``sends``…, ``clicks``…, ``conversions``/``orders``…, ``revenue``/``sales``…,
    ``date``/``timestamp``/``day``… The id, impressions and clicks columns are required; the
    others are optional.

    Parameters
    ----------
    id_column, channel_column, impressions_column, clicks_column, conversions_column, \
revenue_column, timestamp_column
        Columns of the creative table: one row per creative, or one per creative and day when a
        timestamp column exists (counts are summed per creative).
    text_fields
        Text columns to analyse (``title``, ``subject``, ``body``…). ``None``: every string
        column whose name looks like text or whose values are multi-word strings, except the
        id and channel columns.
    target
        The rate to explain: ``"ctr"`` (clicks per impression), ``"cvr"`` (conversions per
        click) or ``"rpi"`` (revenue per impression).
    min_impressions
        Creatives with fewer impressions are reported (with shrunk rates) but not modelled.
    random_state
        Seed of the train/hold-out split, the forest and the permutations.
    top_terms
        How many features the importance ranking reports.
    max_creatives
        How many per-creative rows (those with the most impressions) the JSON answer carries.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )

    id_column: str | None = Field(default=None, min_length=1, max_length=200)
    channel_column: str | None = Field(default=None, min_length=1, max_length=200)
    impressions_column: str | None = Field(default=None, min_length=1, max_length=200)
    clicks_column: str | None = Field(default=None, min_length=1, max_length=200)
    conversions_column: str | None = Field(default=None, min_length=1, max_length=200)
    revenue_column: str | None = Field(default=None, min_length=1, max_length=200)
    timestamp_column: str | None = Field(default=None, min_length=1, max_length=200)
    text_fields: list[str] | None = Field(default=None, max_length=50)
    target: Target = "ctr"
    min_impressions: int = Field(default=100, ge=0)
    random_state: int = Field(default=42, ge=0)
    top_terms: int = Field(default=20, ge=1, le=500)
    max_creatives: int = Field(default=1000, ge=0, le=100_000)

    def role_columns(self) -> dict[str, str | None]:
        """Each column role's configured name, keyed by its camelCase config member."""
        return {
            "idColumn": self.id_column,
            "channelColumn": self.channel_column,
            "impressionsColumn": self.impressions_column,
            "clicksColumn": self.clicks_column,
            "conversionsColumn": self.conversions_column,
            "revenueColumn": self.revenue_column,
            "timestampColumn": self.timestamp_column,
        }

    @model_validator(mode="after")
    def _check_columns(self) -> ContentConfig:
        named = [name for name in self.role_columns().values() if name is not None]
        if len(set(named)) < len(named):
            raise ValueError("each column may play one role only: the column names must differ")
        if self.text_fields is not None:
            if any(not name for name in self.text_fields):
                raise ValueError("textFields must not contain empty names")
            if len(set(self.text_fields)) < len(self.text_fields):
                raise ValueError("textFields must not repeat a column")
            clash = sorted(set(self.text_fields) & set(named))
            if clash:
                raise ValueError(
                    f"textFields {clash} are also used as id/channel/count/timestamp columns"
                )
        return self
