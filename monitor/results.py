"""What one check ended as: the pipeline's result, light enough to import without the pipeline (the
CLI reports a pass, and worker processes send theirs back, without loading parsers or HTTP)."""
from __future__ import annotations

from dataclasses import dataclass, field

SKIPPED = "skipped"  # the outcome of a target another process is checking


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
