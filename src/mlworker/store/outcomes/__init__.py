"""The outcome log and what learns from it (migration 0005).

:class:`OutcomeRepository` records outcomes idempotently with each offer's running evidence and
hands batch learners their pending outcomes; :class:`ShadowScoreRepository` logs what shadow
models scored; :class:`ScheduledTrainingRepository` lists scheduled learners and claims their
schedule slots.
"""

from mlworker.store.outcomes.log import (
    CLAIM_EXPIRY,
    NewOutcome,
    OutcomeRepository,
    PendingBatch,
    RecordResult,
    interaction_frame,
)
from mlworker.store.outcomes.schedules import (
    ScheduledModel,
    ScheduledTrainingRepository,
    SlotClaim,
)
from mlworker.store.outcomes.shadows import ShadowScore, ShadowScoreRepository

__all__ = [
    "CLAIM_EXPIRY",
    "NewOutcome",
    "OutcomeRepository",
    "PendingBatch",
    "RecordResult",
    "ScheduledModel",
    "ScheduledTrainingRepository",
    "ShadowScore",
    "ShadowScoreRepository",
    "SlotClaim",
    "interaction_frame",
]
