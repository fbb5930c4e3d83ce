"""Registry promotions: the lifecycle state machine and one champion per family.

Promotions lock every row of the family (in id order, so two promotions never deadlock) before
reading any status; the partial unique index on champions is the last line of defence and its
violation becomes :class:`~mlworker.errors.Conflict`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mlworker.errors import Conflict, NotFound
from mlworker.registry.values import ALGORITHM_MODEL_KIND, AlgorithmModel, check_transition
from mlworker.store.algorithm_models._rows import audit, reread, snapshot_of
from mlworker.store.db import Database
from mlworker.store.models import find_row
from mlworker.store.records import ModelRecord, utcnow


class PromotionRepository:
    """Registry status changes of algorithm models, always scoped to a tenant.

    Parameters
    ----------
    db
        The metadata store.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def promote(
        self,
        model_id: str,
        *,
        tenant: str,
        to: str,
        actor: str,
        reason: str | None,
        demote_to: str = "archived",
    ) -> tuple[AlgorithmModel, list[AlgorithmModel]]:
        """Move a model to registry status ``to``; return it and any champion it displaced.

        Promoting to ``champion`` demotes the family's current champion to ``demote_to`` in the
        same transaction. Each changed model gets an audit row ``registry_promote``.

        Raises
        ------
        InvalidTransition
            The lifecycle does not allow the change.
        Conflict
            A concurrent change won the family's champion slot, or the family changed meanwhile.
        """
        try:
            with self._db.session() as session:
                first = find_row(session, model_id, tenant=tenant, kind=ALGORITHM_MODEL_KIND)
                if first is None:
                    raise NotFound(f"algorithm model {model_id} not found", field="id")
                family = first.family
                # A trained estimator's family is its own id; a family name that happens to
                # match one must not lock it or let its status take part in this promotion.
                locked = session.scalars(
                    select(ModelRecord)
                    .where(
                        ModelRecord.tenant == tenant,
                        ModelRecord.kind == ALGORITHM_MODEL_KIND,
                        or_(ModelRecord.family == family, ModelRecord.id == model_id),
                    )
                    .order_by(ModelRecord.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                ).all()
                row = next(r for r in locked if r.id == model_id)
                if row.family != family:
                    raise Conflict(
                        "the model's family changed during the promotion; retry",
                        field="registryFamily",
                    )
                check_transition(row.registry_status, to)
                now = utcnow()
                displaced: list[ModelRecord] = []
                if to == "champion":
                    for other in locked:
                        if other.id != model_id and other.registry_status == "champion":
                            check_transition("champion", demote_to)
                            self._move(
                                session,
                                other,
                                demote_to,
                                actor=actor,
                                now=now,
                                reason=f"displaced by {row.key!r}"
                                + (f": {reason}" if reason else ""),
                            )
                            displaced.append(other)
                    # The demotion must reach the unique index before the promotion does.
                    session.flush()
                self._move(session, row, to, actor=actor, now=now, reason=reason)
                session.flush()
                promoted = reread(session, model_id, tenant)
                demoted = [reread(session, other.id, tenant) for other in displaced]
                return promoted, demoted
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                "another model of this family became champion at the same time; retry",
                field="to",
            ) from exc

    def _move(
        self,
        session: Session,
        row: ModelRecord,
        target: str,
        *,
        actor: str,
        now: datetime,
        reason: str | None,
    ) -> None:
        before = snapshot_of(row)
        row.registry_status = target
        row.updated_at = now
        audit(
            session,
            row,
            actor=actor,
            action="registry_promote",
            before=before,
            after=snapshot_of(row),
            reason=reason,
        )
