"""How a moment is written wherever a user reads one (JSON, alerts, messages): ISO 8601 in UTC,
to the second, with a Z. Stored times are UTC; one read back without a zone is taken as UTC.

>>> from datetime import datetime, timedelta, timezone
>>> iso(datetime(2018, 6, 18, 9, 50, 12, 345))
'2018-06-18T09:50:12Z'
>>> iso(datetime(2018, 6, 18, 11, 50, tzinfo=timezone(timedelta(hours=2))))
'2018-06-18T09:50:00Z'
>>> iso(None) is None
True
"""
from __future__ import annotations

from datetime import datetime, timezone

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime(FORMAT)
