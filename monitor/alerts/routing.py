"""Which alert channels an event goes to: what the store asks while it records an event (so a
check pass needs no channel's sending code, nor its imports)."""
from __future__ import annotations

from .. import kinds
from ..config import Settings


SAVE_PAGE_NOW = "save-page-now"  # the outbox channel of Save Page Now's capture requests
TIMESTAMP = "timestamp"  # the outbox channel of trusted timestamps of a chain head (monitor/timestamps.py)


class Router:
    """Which channels an event goes to, and whether it is marked priority."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def __call__(self, target_name: str, kind: str, stats: dict, passages: list,
                 site: str | None = None) -> list[tuple[str, bool]]:
        from ..detect import keyword_hits  # here: a command that routes nothing needs no diff or parser

        target = self.settings.watch(target_name, site)
        if target is None:
            return []
        hits = keyword_hits(target.keywords, passages)
        changed = stats.get("words_removed", 0) + stats.get("words_added", 0)
        routes = []
        for name in self.settings.channels_of(target):
            channel = self.settings.config.alerts[name]
            if kind not in channel.kinds:
                continue
            always = kind == "restored" or (kind == "removed" and hits)
            if stats and changed < channel.min_words and not always:
                continue
            routes.append((name, bool(hits)))
        if self.settings.monitor.save_page_now and kind in kinds.EDITS:
            routes.append((SAVE_PAGE_NOW, False))  # a capture request (monitor/alerts/archive.py)
        if self.settings.monitor.timestamp_url and kind in kinds.CHANGES:
            routes.append((TIMESTAMP, False))  # a new version: its chain head to timestamp
        return routes
