"""The one shape every channel renders: an alert's facts, gathered from the store."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .. import kinds
from ..detect import keyword_hits

PASSAGE_CHARS = 600  # longer removed/added text is cut with "…"


@dataclass
class Message:
    alert_id: int | None
    channel: str
    kind: str
    target: str
    url: str
    summary: str
    detected_at: datetime
    priority: bool = False
    keywords: list[str] = field(default_factory=list)
    passages: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    from_version: int | None = None
    to_version: int | None = None
    restored_version: int | None = None
    restored_first_seen: datetime | None = None
    change_link: str | None = None
    target_link: str | None = None
    screenshot_link: str | None = None  # the new version's screenshot (fetcher = "browser")
    archive_url: str | None = None  # the Wayback Machine's capture of the page (save_page_now), once taken

    @property
    def title(self) -> str:
        return f"{kinds.title(self.kind)}: {self.target}"

    @property
    def versions(self) -> str:
        if self.from_version and self.to_version:
            return f"v{self.from_version} → v{self.to_version}"
        return f"v{self.to_version}" if self.to_version else ""

    def shown(self, limit: int) -> tuple[list[dict], int]:
        """The first `limit` passages (each cut to a readable length) and how many are left out."""
        cut = [{k: _cut(v) for k, v in p.items()} for p in self.passages[:limit]]
        return cut, max(0, len(self.passages) - limit)


def _cut(text: str) -> str:
    return text if len(text) <= PASSAGE_CHARS else text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"


def from_context(ctx: dict, base_url: str | None, keywords: list[str]) -> Message:
    """Store.alert_context() -> Message."""
    alert, event, target, change, versions = ctx["alert"], ctx["event"], ctx["target"], ctx["change"], ctx["versions"]
    base = base_url.rstrip("/") if base_url else None
    message = Message(alert_id=alert.id, channel=alert.channel, kind=event.kind, target=target.name, url=target.url,
                      summary=event.summary, detected_at=event.created_at, priority=alert.priority,
                      target_link=f"{base}/targets/{target.name}" if base else None)
    if change is not None:
        seq = lambda vid: versions[vid].seq if vid in versions else None  # noqa: E731
        message.passages = list(change.passages or [])
        message.stats = dict(change.stats or {})
        message.from_version, message.to_version = seq(change.from_version_id), seq(change.to_version_id)
        if change.restored_version_id in versions:
            message.restored_version = versions[change.restored_version_id].seq
            message.restored_first_seen = versions[change.restored_version_id].first_seen
        message.change_link = f"{base}/changes/{change.id}" if base else None
        message.archive_url = change.archive_url
        new = versions.get(change.to_version_id)
        if base and new is not None and new.screenshot_sha:
            message.screenshot_link = f"{base}/targets/{target.name}/versions/{new.seq}/screenshot.png"
        message.keywords = keyword_hits(keywords, message.passages)
    return message


def sample(channel: str) -> Message:
    """What `monitor test-alert` sends."""
    from ..models import utcnow

    return Message(
        alert_id=None, channel=channel, kind="test", target="example-post", url="https://example.org/blog/post",
        summary="test alert from monitor: if you can read this, the channel works",
        detected_at=utcnow(), from_version=1, to_version=2,
        passages=[{"before": "Our platform can ", "removed": "accelerate facial recognition and identification",
                   "added": "help agencies serve the public", "after": "."}],
        stats={"words_removed": 5, "words_added": 5},
    )
