"""Decide what a new version is: its first version, a new post, or a change between two versions
(added / removed / edited / restored / formatting / rebaselined), with a one-line summary, a
significance score and the changed passages (with context) that alerts quote. Every such
decision is made here and comes back as one record (results.Verdict) that the store keeps.
Pure functions over texts and diff results, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .diff import DELETE, EQUAL, INSERT, diff_blocks
from .extract import fold
from .results import Earlier, Verdict
from .words import plural

CONTEXT_CHARS = 160
MAX_PASSAGES = 50
QUOTE_CHARS = 120
_SENTENCE_START = re.compile(r"(?:^|[.!?…]\s+)(?=\S)")
# A full stop after these does not end a sentence ("U.S. immigration", "Mr. Smith", "e.g. this").
_NOT_AN_END = re.compile(r"(?:\b(?:[A-Za-z]\.)+[A-Za-z]?|\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Inc|Ltd|Co|Corp|Gov|Sen|Rep|"
                         r"Gen|Col|Capt|Lt|No|vs|etc|approx|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.)$")


def sentence_starts(text: str) -> list[int]:
    """Where sentences begin in text, abbreviations and initials not counted as ends.

    >>> text = "Agencies trust it. The U.S. Immigration agency can now process data."
    >>> [text[i:i + 10] for i in sentence_starts(text)]
    ['Agencies t', 'The U.S. I']
    """
    starts = []
    for match in _SENTENCE_START.finditer(text):
        end = match.start() + 1  # just past the punctuation
        if match.start() and _NOT_AN_END.search(text[max(0, end - 12):end]):
            continue
        starts.append(match.end())
    return starts


def _quote(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + "…"
    return f"'{text}'"


def _context_before(text: str) -> str:
    text = text.removesuffix("\n").rsplit("\n", 1)[-1]
    if len(text) > CONTEXT_CHARS:
        text = text[-CONTEXT_CHARS:]
        text = "…" + text.split(" ", 1)[-1] if " " in text else text
    starts = sentence_starts(text)
    if len(starts) > 1 and len(text) - starts[-1] > 20:
        text = text[starts[-1]:]
    return text


def _context_after(text: str) -> str:
    text = text.split("\n", 1)[0]
    if len(text) > CONTEXT_CHARS:
        text = text[:CONTEXT_CHARS].rsplit(" ", 1)[0] + "…"
    return text


def passages(ops: list[list], limit: int = MAX_PASSAGES) -> list[dict]:
    """Changed stretches with a little kept text either side, in document order.

    A kept run of a few words between two changes joins them into one passage, shown on both
    sides, so "…the old words…" and "…the new words…" read as phrases.
    """
    hunks: list[list[int]] = []
    for i, (op, text) in enumerate(ops):
        if op == EQUAL:
            continue
        if hunks and (i - hunks[-1][-1] == 1 or _joinable(ops, hunks[-1][-1] + 1, i)):
            hunks[-1].extend(range(hunks[-1][-1] + 1, i + 1))
        else:
            hunks.append([i])
    out = []
    for hunk in hunks[:limit]:
        removed = "".join(ops[k][1] for k in hunk if ops[k][0] in (DELETE, EQUAL))
        added = "".join(ops[k][1] for k in hunk if ops[k][0] in (INSERT, EQUAL))
        before = ops[hunk[0] - 1][1] if hunk[0] > 0 and ops[hunk[0] - 1][0] == EQUAL else ""
        after = ops[hunk[-1] + 1][1] if hunk[-1] + 1 < len(ops) and ops[hunk[-1] + 1][0] == EQUAL else ""
        out.append({
            "removed": removed.strip("\n") if any(ops[k][0] == DELETE for k in hunk) else "",
            "added": added.strip("\n") if any(ops[k][0] == INSERT for k in hunk) else "",
            "before": _context_before(before),
            "after": _context_after(after),
        })
    return out


def _joinable(ops: list[list], start: int, end: int) -> bool:
    kept = "".join(ops[k][1] for k in range(start, end) if ops[k][0] == EQUAL)
    return all(ops[k][0] == EQUAL for k in range(start, end)) and "\n" not in kept and len(kept.split()) <= 3


def keyword_hits(keywords: list[str], passages: list[dict]) -> list[str]:
    """The watched keywords found (case-insensitively) in removed or added text.

    >>> keyword_hits(["Facial recognition", "drones"], [{"removed": "accelerate facial recognition", "added": ""}])
    ['Facial recognition']
    """
    changed = " ".join(p.get("removed", "") + " " + p.get("added", "") for p in passages).lower()
    return [k for k in keywords if k.lower() in changed]


def score(stats: dict) -> float:
    """0..1: the share of the text that changed, lifted for whole paragraphs removed or added."""
    changed = stats["words_removed"] + stats["words_added"]
    base = max(stats["words_before"], stats["words_after"], 1)
    share = min(1.0, changed / base)
    whole = stats["blocks_removed"] + stats["blocks_added"]
    return round(min(1.0, share + 0.1 * whole), 4) if changed else 0.0


def summarise(kind: str, stats: dict, found: list[dict], restored: Earlier | None = None) -> str:
    removed, added = stats["words_removed"], stats["words_added"]
    first_removed = next((p["removed"] for p in found if p["removed"]), "")
    first_added = next((p["added"] for p in found if p["added"]), "")
    if kind == "restored" and restored:
        head = f"restored version {restored.seq} (first seen {restored.first_seen:%Y-%m-%d %H:%M} UTC)"
        if added:
            return f"{head}: {plural(added, 'word')} back: {_quote(first_added)}"
        return head
    if stats.get("blocks_moved") and stats["blocks_moved"] * 2 >= stats["blocks_removed"] + stats["blocks_added"] > 0:
        return f"moved {plural(stats['blocks_moved'], 'paragraph')}: {_quote(first_added)}"
    if kind == "removed":
        blocks = stats["blocks_removed"]
        what = f"{plural(blocks, 'paragraph')}, {plural(removed, 'word')}" if blocks else plural(removed, "word")
        return f"removed {what}: {_quote(first_removed)}"
    if kind == "added":
        blocks = stats["blocks_added"]
        what = f"{plural(blocks, 'paragraph')}, {plural(added, 'word')}" if blocks else plural(added, "word")
        return f"added {what}: {_quote(first_added)}"
    if not removed and not added:
        return "changed punctuation or symbols"
    if len(found) == 1 and first_removed and first_added:
        return f"edited: {_quote(first_removed, 60)} → {_quote(first_added, 60)}"
    return (f"edited {plural(len(found), 'place')}: {plural(removed, 'word')} removed, "
            f"{plural(added, 'word')} added: {_quote(first_removed or first_added, 60)}")


def first_version(words: int) -> Verdict:
    """A target's first version.

    >>> first_version(141).summary
    'first version: 141 words'
    """
    return Verdict("first", f"first version: {plural(words, 'word')}")


def new_post(words: int, title: str) -> Verdict:
    """The first version of a post that appeared after its site's first discovery: the news is
    the post itself, so its event is a 'new_post' one that names it.

    >>> post = new_post(12, "Our new policy")
    >>> post.kind, post.event_kind, post.event_summary
    ('first', 'new_post', 'new post: Our new policy (12 words)')
    """
    return Verdict("first", f"first version: {plural(words, 'word')}", event="new_post",
                   event_summary=f"new post: {title} ({plural(words, 'word')})")


def compare(old: list[str], new: list[str], restored: Earlier | None = None, note: str | None = None) -> Verdict:
    """The change from a target's previous text to its new one (both as extracted lines, the
    previous one read with the current settings), given the earlier version the new text
    equals, if any; `note` (a re-pinned scope, say) goes before the summary.

    The same lines under new extraction settings are a new baseline, not an edit:

    >>> same = compare(["One.", "Two."], ["One.", "Two."])
    >>> same.kind, same.summary, same.alert
    ('rebaselined', 'extraction settings changed; text the same', False)
    """
    if old == new:
        verdict = Verdict("rebaselined", "extraction settings changed; text the same", alert=False)
    else:
        verdict = classify(diff_blocks(old, new), restored)
    return replace(verdict, summary=f"{note}; {verdict.summary}") if note else verdict


def classify(diff: dict, restored: Earlier | None = None) -> Verdict:
    """diff_blocks() result (+ the earlier version the new text equals, if any) -> Verdict.

    Only typography changed (quotes, dashes, ellipses a reader cannot tell apart): 'formatting',
    which channels do not send unless they ask for it:

    >>> classify(diff_blocks(["We are “done” – for now."], ['We are "done" - for now.'])).kind
    'formatting'
    """
    stats = diff["stats"]
    found = passages(diff["ops"])
    stats_kept = dict(stats, fallback=diff["fallback"])
    if restored is None and len(found) < MAX_PASSAGES and all(fold(p["removed"]) == fold(p["added"]) for p in found):
        return Verdict("formatting", "typography only (quotes, dashes, ellipses): no words changed",
                       stats=stats_kept, passages=found)
    if restored is not None:
        kind = "restored"
    elif stats["words_removed"] and not stats["words_added"]:
        kind = "removed"
    elif stats["words_added"] and not stats["words_removed"]:
        kind = "added"
    else:
        kind = "edited"
    return Verdict(kind, summarise(kind, stats, found, restored), score=score(stats), stats=stats_kept,
                   passages=found, restored=restored)


def _recaptured(summary: str, alert: bool = True) -> Verdict:
    """A version recorded as a new baseline because the previous one cannot be compared with;
    with `alert`, an 'error' event says why (a lost or damaged capture is lost evidence)."""
    return Verdict("rebaselined", summary, alert=alert, event="error")


def previous_lost(seq: int, problem: object) -> Verdict:
    """The previous version's capture is missing or damaged: this one is the new baseline, and
    an 'error' event says an edit made in between cannot be shown.

    >>> lost = previous_lost(3, "no such file")
    >>> lost.kind, lost.event_kind
    ('rebaselined', 'error')
    """
    return _recaptured(f"previous capture v{seq} missing or damaged ({problem}); re-captured "
                      "as the new baseline (an edit made in between cannot be shown)")


def previous_unfit(seq: int, problem: object) -> Verdict:
    """The previous capture cannot be read with the current extraction settings: a new baseline,
    silently (the user changed the settings)."""
    return _recaptured(f"extraction settings changed and the previous capture v{seq} "
                      f"does not fit them ({problem}); re-captured as the new baseline", alert=False)


# ---- error pages that answer 200 ----------------------------------------------------------------

ERROR_PAGES = [
    ("not found", re.compile(r"\b(404|page not found|not be found|cannot be found|doesn'?t exist|does not exist"
                             r"|no longer available|page is missing)\b", re.I), True),
    ("maintenance", re.compile(r"\b(under maintenance|scheduled maintenance|maintenance mode|be right back"
                               r"|temporarily unavailable|service unavailable|we'?ll be back)\b", re.I), False),
    ("login wall", re.compile(r"\b(sign in to continue|log in to continue|please (log|sign) in|login required"
                              r"|you must be logged in|subscribe to (continue|read))\b", re.I), False),
    ("captcha", re.compile(r"\b(captcha|are you a robot|not a robot|verify you are (a )?human|unusual traffic"
                           r"|security check|checking your browser|just a moment|access denied)\b", re.I), False),
    ("rate limit", re.compile(r"\b(too many requests|rate limit(ed)?|request limit)\b", re.I), False),
]
ERROR_PAGE_WORDS = 150  # an error page is short; a long article that mentions "404" is not one
COLLAPSE_FROM = 100  # words: below this the usual size says little
COLLAPSE_SHARE = 0.1  # an extraction under this share of the usual size has collapsed


def error_page(title: str, blocks: list[str], previous_words: int | None) -> tuple[str, bool] | None:
    """(reason, content gone?) when a 200 answer is really an error page, else None: a short page
    whose title or first lines read like an error, or an extraction that collapsed to a tiny
    fraction of the last good version's size."""
    words = len(" ".join(blocks).split())
    if words <= ERROR_PAGE_WORDS:
        head = " ".join([title] + blocks[:4])
        for label, pattern, gone in ERROR_PAGES:
            if pattern.search(head):
                return f"error page ({label}): {_quote(title or head, 80)}", gone
    if previous_words and previous_words >= COLLAPSE_FROM and words < COLLAPSE_SHARE * previous_words:
        return (f"content collapsed from {previous_words} to {words} words "
                f"(an error page or a broken layout, not an edit)", True)
    return None
