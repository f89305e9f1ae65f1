"""Learning which blocks of a page change on their own (timestamps, nonces, rotating lists), so
they stop raising alerts. Pure functions over extracted pages; the rules are stored per target.

A rule names a block path (see extract.path_of) and an action:
- "mask": the block's text always has the same shape once numbers and ids are masked
  (`Generated 2018-06-18T09:12:03Z · request 7f3a…`): it is kept, masked;
- "drop": the text at that path changes wholesale (a rotating "trending" list): it is dropped.

Rules come from two sources: calibration (two fetches of a new target a moment apart: whatever
differs is volatile), and experience (a path that changed in PATH_STRIKES changes while the rest
of the page stayed put).
"""
from __future__ import annotations

from collections import defaultdict

from .extract import Extracted, mask_all

DROP_SHARE = 0.25  # a path holding more of the page's words than this is never dropped
PATH_STRIKES = 3  # changes confined to one path before it is learned as volatile
LONE_CHANGE_PATHS = 2  # a change touching at most this many paths counts as "the rest stayed put"


def _by_path(page: Extracted) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for text, path in zip(page.blocks, page.paths):
        grouped[path].append(text)
    return grouped


def rule_for(path: str, old: list[str], new: list[str], total_words: int, reason: str) -> dict | None:
    """The rule for a path whose blocks went from `old` to `new`, or None when neither masking
    nor dropping is safe (the path holds too much of the page)."""
    templates = sorted({mask_all(t) for t in old} | {mask_all(t) for t in new})
    if len(old) == len(new) and [mask_all(t) for t in old] == [mask_all(t) for t in new]:
        return {"path": path, "action": "mask", "templates": templates, "reason": reason}
    words = sum(len(t.split()) for t in old + new) / 2
    if total_words and words > DROP_SHARE * total_words:
        return None
    return {"path": path, "action": "drop", "reason": reason}


def changed_paths(old: Extracted, new: Extracted) -> dict[str, tuple[list[str], list[str]]]:
    """Paths whose blocks differ between two extractions: path -> (old texts, new texts)."""
    a, b = _by_path(old), _by_path(new)
    return {p: (a.get(p, []), b.get(p, [])) for p in set(a) | set(b) if a.get(p, []) != b.get(p, [])}


def calibrate(first: Extracted, second: Extracted) -> list[dict]:
    """Rules from two fetches of the same page a moment apart."""
    total = max(first.word_count, 1)
    rules = []
    for path, (old, new) in sorted(changed_paths(first, second).items()):
        rule = rule_for(path, old, new, total, "differed between two fetches a moment apart")
        if rule:
            rules.append(rule)
    return rules


def learn(old_blocks: list[str], new: Extracted, strikes: dict[str, int]) -> tuple[list[dict], dict[str, int]]:
    """After a change: when it touched few paths, count it against them; return rules for paths
    that reached PATH_STRIKES, and the updated counts. Paths are those of the new blocks whose
    text is new (a block replaced in place); a pure removal teaches nothing."""
    before = set(old_blocks)
    changed: dict[str, list[str]] = defaultdict(list)
    for text, path in zip(new.blocks, new.paths):
        if text not in before:
            changed[path].append(text)
    if not changed or len(changed) > LONE_CHANGE_PATHS:
        return [], strikes
    strikes = dict(strikes)
    old_shapes: set[str] | None = None  # masked once, when a path first earns a rule
    held = _by_path(new)
    total = max(new.word_count, 1)
    rules = []
    for path, texts in changed.items():
        # A path is positionless (`article > p` is every paragraph of the article): one holding a
        # large share of the page is the content itself, edited now and then, never volatile,
        # however many edits happen to land there.
        if sum(len(t.split()) for t in held.get(path, [])) > DROP_SHARE * total:
            strikes.pop(path, None)
            continue
        strikes[path] = strikes.get(path, 0) + 1
        if strikes[path] < PATH_STRIKES:
            continue
        reason = f"changed alone in {strikes[path]} changes while the rest stayed put"
        shapes = sorted({mask_all(t) for t in texts})
        if old_shapes is None:
            old_shapes = {mask_all(t) for t in old_blocks}
        if all(shape in old_shapes for shape in shapes):
            rules.append({"path": path, "action": "mask", "templates": shapes, "reason": reason})
        else:
            rules.append({"path": path, "action": "drop", "reason": reason})
        del strikes[path]
    return rules, strikes
