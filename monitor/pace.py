"""Adaptive pace for a site's posts: new or just-edited posts often, old quiet ones rarely.

A pure function of what the store already keeps. A post is edited mostly while it is young, and a
post edited once is often edited again within hours (the ICE passage was deleted and restored the
same day), so the interval grows with the time since the post was published or last changed and
with every unchanged check in a row, and a change resets both: the next check comes after
`min_interval` again.
"""
from __future__ import annotations

from datetime import datetime

AGE_FRACTION = 1 / 24   # by age alone: a day-old post hourly, a week-old one every 7 h, a 24-day-old one daily
GROWTH = 1.5            # by quiet alone: each unchanged check in a row makes the next interval 1.5x longer


def interval(min_interval: float, max_interval: float, quiet_since: datetime | None, now: datetime,
             streak: int) -> float:
    """Seconds until the next check. `quiet_since`: when the post was published or last changed,
    whichever is later (None when unknown: the post counts as old, so the age term is at its most);
    `streak`: unchanged checks in a row.

    A day-old post is checked about hourly; one quiet for long, at the slowest pace allowed:

    >>> from datetime import timedelta
    >>> now = datetime(2018, 6, 18, 9, 50)
    >>> interval(300, 86400, now - timedelta(days=1), now, streak=0)
    3600.0
    >>> interval(300, 86400, now - timedelta(days=200), now, streak=0)
    86400
    """
    if quiet_since is None:
        by_age = max_interval
    else:
        by_age = max(0.0, (now - quiet_since).total_seconds()) * AGE_FRACTION
    by_streak = min_interval * GROWTH ** min(streak, 64)
    return max(min_interval, min(max_interval, max(by_age, by_streak)))
