"""Parameters of the contact-policy analysis: the ``config`` of ``POST /analyze/policies``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

DEFAULT_POSITIVE_OUTCOMES = [
    "click",
    "clicked",
    "open",
    "opened",
    "respond",
    "responded",
    "response",
    "reply",
    "replied",
    "accept",
    "accepted",
    "conversion",
    "converted",
    "purchase",
    "purchased",
]
DEFAULT_CONVERSION_OUTCOMES = [
    "conversion",
    "converted",
    "accept",
    "accepted",
    "purchase",
    "purchased",
]
DEFAULT_FREQUENCY_BANDS = [1, 3, 5, 7, 10]


def normalize_outcome(value: object) -> str:
    """Outcome labels are compared stripped and lower-cased.

    Examples
    --------
    >>> normalize_outcome("  Clicked ")
    'clicked'
    """
    return str(value).strip().lower()


class PolicyConfig(BaseModel):
    """What to analyse and the contact policy currently in force.

    Column names left ``None`` are found by common names (case and separators ignored):
    ``customerId``/``user_id``…, ``timestamp``/``occurredAt``/``created_at``…,
    ``outcome``/``event``/``response``…, ``channel``…, ``offerId``/``offer``… The channel and
    offer columns are optional.

    Parameters
    ----------
    customer_column, timestamp_column, outcome_column, channel_column, offer_column
        Columns of the interaction history (one row per contact).
    lookback_days
        Length of the analysed window ``(end - lookbackDays, end]``, where ``end`` is the
        latest timestamp in the data (so the result does not depend on when the analysis runs).
        Earlier rows still count towards the trailing frequencies of contacts in the window.
    daily_cap, weekly_cap, monthly_cap
        The caps in force: a cap recommendation is made only below them.
    frequency_bands
        Upper bounds of the weekly frequency bands, strictly increasing: ``[1, 3, 5, 7, 10]``
        gives ``1``, ``2-3``, ``4-5``, ``6-7``, ``8-10``, ``11+``.
    positive_outcomes
        Outcomes that count as a response (a click). Conversions count as responses too.
    conversion_outcomes
        Outcomes that count as a conversion.
    negative_outcomes
        ``None``: every other outcome (a missing one included) is a non-response. A list: only
        these are non-responses; rows whose outcome is in no list are ignored and counted.
    confidence_level
        Coverage of every interval; ``1 - confidence_level`` is the significance level.
    random_state
        Seed for any randomness (the analysis is currently fully deterministic).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )

    customer_column: str | None = Field(default=None, min_length=1, max_length=200)
    timestamp_column: str | None = Field(default=None, min_length=1, max_length=200)
    outcome_column: str | None = Field(default=None, min_length=1, max_length=200)
    channel_column: str | None = Field(default=None, min_length=1, max_length=200)
    offer_column: str | None = Field(default=None, min_length=1, max_length=200)
    lookback_days: int = Field(default=90, ge=1, le=3650)
    daily_cap: int = Field(default=3, ge=1, le=1000)
    weekly_cap: int = Field(default=10, ge=1, le=10_000)
    monthly_cap: int = Field(default=30, ge=1, le=100_000)
    frequency_bands: list[int] = Field(
        default_factory=lambda: list(DEFAULT_FREQUENCY_BANDS), min_length=1, max_length=30
    )
    positive_outcomes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_POSITIVE_OUTCOMES), min_length=1, max_length=200
    )
    conversion_outcomes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CONVERSION_OUTCOMES), max_length=200
    )
    negative_outcomes: list[str] | None = Field(default=None, max_length=200)
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    random_state: int = Field(default=42, ge=0)

    @model_validator(mode="after")
    def _check_consistency(self) -> PolicyConfig:
        bands = self.frequency_bands
        if bands[0] < 1 or any(high <= low for low, high in zip(bands, bands[1:], strict=False)):
            raise ValueError(
                "frequencyBands must be strictly increasing positive integers, "
                "e.g. [1, 3, 5, 7, 10]"
            )
        if not self.daily_cap <= self.weekly_cap <= self.monthly_cap:
            raise ValueError("the caps must satisfy dailyCap <= weeklyCap <= monthlyCap")
        named = [
            name
            for name in (
                self.customer_column,
                self.timestamp_column,
                self.outcome_column,
                self.channel_column,
                self.offer_column,
            )
            if name is not None
        ]
        if len(set(named)) != len(named):
            raise ValueError("each column may play one role only; the column names repeat")
        lists = {
            "positiveOutcomes": self.positive_outcomes,
            "conversionOutcomes": self.conversion_outcomes,
            "negativeOutcomes": self.negative_outcomes or [],
        }
        for name, values in lists.items():
            if any(normalize_outcome(value) == "" for value in values):
                raise ValueError(f"{name} may not contain blank outcomes")
        if self.negative_outcomes is not None:
            responses = self.positive_set | self.conversion_set
            overlap = sorted(responses & {normalize_outcome(v) for v in self.negative_outcomes})
            if overlap:
                raise ValueError(
                    f"negativeOutcomes {overlap} are also positive or conversion outcomes"
                )
        return self

    @property
    def positive_set(self) -> frozenset[str]:
        """Normalised outcomes that count as a response (conversions included)."""
        return frozenset(map(normalize_outcome, self.positive_outcomes)) | self.conversion_set

    @property
    def conversion_set(self) -> frozenset[str]:
        """Normalised outcomes that count as a conversion."""
        return frozenset(map(normalize_outcome, self.conversion_outcomes))

    @property
    def negative_set(self) -> frozenset[str] | None:
        """Normalised non-response outcomes, ``None`` when every other outcome is one."""
        if self.negative_outcomes is None:
            return None
        return frozenset(map(normalize_outcome, self.negative_outcomes))

    def cap_for(self, window: str) -> int:
        """Return the current cap of a window (``daily``, ``weekly`` or ``monthly``)."""
        return {"daily": self.daily_cap, "weekly": self.weekly_cap, "monthly": self.monthly_cap}[
            window
        ]
