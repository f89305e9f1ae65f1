"""Version texts and diffs for the UI, cached: both are immutable once stored (a text is named by
its SHA-256, and a diff is a pure function of two texts), so a cache never goes stale."""
from __future__ import annotations

import threading
from collections import OrderedDict

from ..report import diff_texts
from ..snapshots import Snapshots

TEXT_BYTES = 64_000_000  # decoded texts kept, least recently used dropped first
DIFFS = 32


class Texts:
    def __init__(self, snapshots: Snapshots, max_bytes: int = TEXT_BYTES, max_diffs: int = DIFFS):
        self.snapshots = snapshots
        self.max_bytes = max_bytes
        self.max_diffs = max_diffs
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._diffs: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def text(self, sha: str) -> str:
        with self._lock:
            if sha in self._texts:
                self._texts.move_to_end(sha)
                return self._texts[sha]
        text = self.snapshots.get_text(sha)
        with self._lock:
            if sha not in self._texts:
                self._texts[sha] = text
                self._bytes += len(text)
                while self._bytes > self.max_bytes and len(self._texts) > 1:
                    _, dropped = self._texts.popitem(last=False)
                    self._bytes -= len(dropped)
        return text

    def diff(self, old_sha: str, new_sha: str) -> dict:
        """report.diff_texts() of two stored texts: {"ops", "stats", "fallback"}."""
        key = (old_sha, new_sha)
        with self._lock:
            if key in self._diffs:
                self._diffs.move_to_end(key)
                return self._diffs[key]
        result = diff_texts(self.text(old_sha), self.text(new_sha))
        with self._lock:
            self._diffs[key] = result
            if len(self._diffs) > self.max_diffs:
                self._diffs.popitem(last=False)
        return result
