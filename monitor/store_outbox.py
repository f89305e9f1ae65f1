"""The store's part that holds the alert outbox: pending alerts, their attempts and outcomes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, update
from sqlmodel import select

from .models import Alert, Change, Event, Target, Version, utcnow


class OutboxRows:
    """The alert outbox's rows (part of Store)."""


    def claim_alerts(self, now: datetime, limit: int = 100, states: tuple[str, ...] = ("pending",),
                     due_only: bool = True, after: int = 0) -> list[Alert]:
        """Claim the alerts in `states` (oldest first, ids above `after`) whose next attempt is due,
        or all of them, that no other process is sending; returns them. mark_alert releases each.
        On PostgreSQL alerts another worker is claiming at this moment are passed over (FOR
        UPDATE SKIP LOCKED), as targets are."""
        table = Alert.__table__
        with self.engine.begin() as conn:
            query = select(Alert.id).where(Alert.state.in_(states), Alert.id > after, self._free(conn, table, now))
            if due_only:
                query = query.where(Alert.next_attempt_at <= now)
            ids = list(conn.execute(query.order_by(Alert.id).limit(limit).with_for_update(skip_locked=True)).scalars())
            self._claim(conn, table, ids, now)
        with self.session() as session:
            return list(session.exec(select(Alert).where(Alert.id.in_(ids), Alert.claimed_by == self.worker)
                                     .order_by(Alert.id)))

    def sending(self, alert_id: int) -> None:
        """An alert is about to be sent. When the previous send of it was cut short (its outcome
        never marked: the process died), this one may deliver it twice: count it."""
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.id == alert_id).values(
                redelivered=Alert.redelivered + case((Alert.sending_at.is_not(None), 1), else_=0), sending_at=utcnow()))

    def maybe_delivered(self, alert_id: int) -> None:
        """A send was abandoned before the receiver answered (after its outcome was marked): the
        alert may have arrived, so its next send counts in `redelivered` too."""
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.id == alert_id, Alert.state == "pending").values(sending_at=utcnow()))

    def next_alert_due(self) -> datetime | None:
        """When a pending alert is next due; one another process holds, when its claim ends."""
        now = utcnow()
        with self.engine.connect() as conn:
            free = self._free(conn, Alert.__table__, now)
            due = [conn.execute(select(func.min(Alert.next_attempt_at)).where(Alert.state == "pending", free)).scalar(),
                   conn.execute(select(func.min(Alert.claimed_until)).where(Alert.state == "pending", ~free)).scalar()]
        return min((d for d in due if d is not None), default=None)

    def mark_alert(self, alert_id: int, state: str, at: datetime, error: str | None = None,
                   next_attempt_at: datetime | None = None) -> None:
        """An alert's outcome; releases its claim."""
        values = dict(state=state, attempts=Alert.attempts + 1, last_error=error, sending_at=None, claimed_by=None,
                      claimed_until=None)
        if state == "sent":
            values["sent_at"] = at
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.id == alert_id).values(**values))

    def postpone_alerts(self, channel: str, until: datetime) -> None:
        """A channel's pending alerts wait until `until` (the receiver asked for a pause)."""
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.channel == channel, Alert.state == "pending",
                                             Alert.next_attempt_at < until).values(next_attempt_at=until))

    def alert_context(self, alert: Alert) -> dict:
        """Everything an alert's message is rendered from."""
        with self.session() as session:
            event = session.get(Event, alert.event_id)
            target = session.get(Target, event.target_id)
            change = session.get(Change, event.change_id) if event.change_id else None
            seqs = {}
            if change is not None:
                ids = [i for i in (change.from_version_id, change.to_version_id, change.restored_version_id) if i]
                seqs = {v.id: v for v in session.exec(select(Version).where(Version.id.in_(ids)))}
        return {"alert": alert, "event": event, "target": target, "change": change, "versions": seqs}
