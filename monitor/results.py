"""What one check ended as: the pipeline's result, light enough to import without the pipeline (the
CLI reports a pass, and worker processes send theirs back, without loading parsers or HTTP)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SKIPPED = "skipped"  # the outcome of a target another process is checking


@dataclass(frozen=True)
class Earlier:
    """An earlier version whose text the new one equals: what 'restored' points at."""

    version_id: int
    seq: int
    first_seen: datetime


@dataclass(frozen=True)
class Verdict:
    """What a new version is, as monitor/detect.py decides it, and what the store records for it:
    the change (kind, summary, score, stats, passages, the earlier version it restores) and
    whether it raises an event (by default one of the change's own kind and words)."""

    kind: str  # one of kinds.CHANGES
    summary: str
    score: float = 0.0
    stats: dict = field(default_factory=dict)
    passages: list[dict] = field(default_factory=list)
    restored: Earlier | None = None
    alert: bool = True  # raises an event (which the channels' routes may send)
    event: str | None = None  # the event's kind when not the change's (new_post, error)
    event_summary: str | None = None  # the event's words when not the change's summary

    @property
    def event_kind(self) -> str:
        return self.event or self.kind

    @property
    def outcome(self) -> str:
        """The check's outcome: a target's first version, or a change."""
        return "first" if self.kind == "first" else "changed"

    @property
    def edits_page(self) -> bool:
        """Whether the page itself changed (not a first version, not a re-reading of the same text)."""
        return self.kind not in ("first", "rebaselined")


@dataclass
class CheckResult:
    name: str
    outcome: str  # first | changed | unchanged | error | missing | deferred | merged | skipped
    duration_ms: int = 0
    http_status: int | None = None
    kind: str | None = None
    summary: str = ""
    error: str | None = None
    version: int | None = None
    events: list[str] = field(default_factory=list)
    unsaved: str | None = None  # why the database or disk did not take (all of) this check's result
    keywords: list[str] = field(default_factory=list)  # the target's keywords the change touched: priority

    def line(self) -> str:
        if self.outcome in ("error", "missing"):
            return f"{self.name}: ERROR {self.error}"
        if self.outcome in ("deferred", "merged", SKIPPED):
            return f"{self.name}: {self.outcome} ({self.summary})"
        if self.outcome == "unchanged":
            return f"{self.name}: unchanged"
        flag = f"  [PRIORITY: {', '.join(self.keywords)}]" if self.keywords else ""
        return f"{self.name}: v{self.version} {self.kind}: {self.summary}{flag}"
