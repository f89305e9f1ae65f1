"""Word-level diff of two documents given as lists of text blocks. Pure functions, no I/O.

Three stages keep it fast and useful on big pages: blocks are diffed first (each distinct block
mapped to one character), then sentences inside the changed stretches, then words inside the
changed sentences. Big inputs are first anchored by a patience diff (units that occur once on
each side); diff-match-patch runs on the stretches between anchors under a deadline, and when it
runs out of time its coarse "delete everything, insert everything" answer is detected and the
stretch is anchored instead — so a huge page never stalls a check or yields a useless diff.
`fallback` in the result says whether some stretch still had to be reported coarsely.

diff_blocks(old, new) -> {"ops": [[op, text], ...], "stats": {...}, "fallback": bool}
op is -1 (removed), 0 (kept) or 1 (added); every block ends with "\\n" in the ops text, so the
kept+removed text is the old document and the kept+added text is the new one.
"""
from __future__ import annotations

import re
import time

from diff_match_patch import diff_match_patch

from . import words

DELETE, EQUAL, INSERT = -1, 0, 1
TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
WORD = re.compile(r"\w")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
LARGE = 4000  # units: above this, anchor with patience diff before dmp
SMALL = 64


class _Encoder:
    """Maps each distinct unit (block, sentence, word) to one character, as dmp's linesToChars."""

    def __init__(self):
        self.codes: dict[str, str] = {}

    def encode(self, units: list[str]) -> str:
        out = []
        for unit in units:
            code = self.codes.get(unit)
            if code is None:
                code = self.codes[unit] = chr(len(self.codes) + 1)
            out.append(code)
        return "".join(out)


def _opcodes(a: list[str], b: list[str], timeout: float,
             semantic: bool = False) -> tuple[list[tuple[int, list[str], list[str]]], bool]:
    """Diff two unit lists -> [(op, a_units, b_units)], and whether dmp ran out of time somewhere.

    `semantic` applies dmp's semantic cleanup, which trades a minimal diff for readable phrases;
    right for words, wrong for blocks and sentences (it would report a kept paragraph between
    two edits as removed and added again)."""
    if a == b:
        return ([(EQUAL, a, b)] if a else []), False
    if len(a) + len(b) > LARGE:
        return _patience(a, b, timeout, semantic=semantic)
    return _dmp(a, b, timeout, semantic)


def _dmp(a: list[str], b: list[str], timeout: float,
         semantic: bool) -> tuple[list[tuple[int, list[str], list[str]]], bool]:
    enc = _Encoder()
    ca, cb = enc.encode(a), enc.encode(b)
    dmp = diff_match_patch()
    dmp.Diff_Timeout = timeout
    started = time.perf_counter()
    diffs = dmp.diff_main(ca, cb, checklines=False)
    if timeout > 0 and time.perf_counter() - started >= timeout * 0.9 and _coarse(diffs):
        return _patience(a, b, timeout, anchors_only=True)
    if semantic:
        dmp.diff_cleanupSemantic(diffs)
    out, i, j = [], 0, 0
    for op, chars in diffs:
        n = len(chars)
        if op == EQUAL:
            out.append((EQUAL, a[i:i + n], b[j:j + n]))
            i, j = i + n, j + n
        elif op == DELETE:
            out.append((DELETE, a[i:i + n], []))
            i += n
        else:
            out.append((INSERT, [], b[j:j + n]))
            j += n
    return out, False


def _coarse(diffs: list) -> bool:
    """True when dmp gave up: almost nothing kept although both sides are non-empty."""
    kept = sum(len(t) for op, t in diffs if op == EQUAL)
    total = sum(len(t) for _, t in diffs)
    return kept < 0.05 * total


def _patience(a: list[str], b: list[str], timeout: float, anchors_only: bool = False, semantic: bool = False):
    """Patience diff: units (or short runs of units) that occur once on each side anchor the match
    (their longest run in the same order), and the stretches between anchors are diffed on their
    own. Near-linear on big inputs, so it is used for them and whenever dmp runs out of time."""
    pieces: list[tuple[int, int, int, int, bool]] = []  # (a0, a1, b0, b1, kept)
    stack = [(0, len(a), 0, len(b))]
    while stack:
        a0, a1, b0, b1 = stack.pop()
        start_a, start_b = a0, b0
        while a0 < a1 and b0 < b1 and a[a0] == b[b0]:
            a0, b0 = a0 + 1, b0 + 1
        if a0 > start_a:
            pieces.append((start_a, a0, start_b, b0, True))
        end_a, end_b = a1, b1
        while a1 > a0 and b1 > b0 and a[a1 - 1] == b[b1 - 1]:
            a1, b1 = a1 - 1, b1 - 1
        if a1 < end_a:
            pieces.append((a1, end_a, b1, end_b, True))
        anchors = [] if (a1 - a0) + (b1 - b0) <= SMALL else _anchors(a, b, a0, a1, b0, b1)
        if not anchors:
            if a1 > a0 or b1 > b0:
                pieces.append((a0, a1, b0, b1, False))
            continue
        for i, j, n in anchors:
            stack.append((a0, i, b0, j))
            pieces.append((i, i + n, j, j + n, True))
            a0, b0 = i + n, j + n
        stack.append((a0, a1, b0, b1))
    pieces.sort()
    out: list[tuple[int, list[str], list[str]]] = []
    fallback = anchors_only
    for a0, a1, b0, b1, kept in pieces:
        if kept:
            out.append((EQUAL, a[a0:a1], b[b0:b1]))
        elif a0 == a1 or b0 == b1 or anchors_only or (a1 - a0) + (b1 - b0) > LARGE:
            fallback = fallback or (a0 < a1 and b0 < b1)
            if a1 > a0:
                out.append((DELETE, a[a0:a1], []))
            if b1 > b0:
                out.append((INSERT, [], b[b0:b1]))
        else:
            sub, timed_out = _dmp(a[a0:a1], b[b0:b1], timeout, semantic)
            fallback = fallback or timed_out
            out.extend(sub)
    return out, fallback


def _anchors(a, b, a0, a1, b0, b1) -> list[tuple[int, int, int]]:
    """Anchors (i, j, n): a[i:i+n] == b[j:j+n], occurring once on each side, in order. Single
    units first; when none is unique (a long run-on text from a small vocabulary), runs of
    n units, which almost always are."""
    for n in (1, 4, 16):
        if (a1 - a0) < n or (b1 - b0) < n:
            break
        key_a = (lambda i: a[i]) if n == 1 else (lambda i: tuple(a[i:i + n]))
        key_b = (lambda j: b[j]) if n == 1 else (lambda j: tuple(b[j:j + n]))
        count_a: dict = {}
        for i in range(a0, a1 - n + 1):
            k = key_a(i)
            count_a[k] = count_a.get(k, 0) + 1
        pos_b: dict = {}
        count_b: dict = {}
        for j in range(b0, b1 - n + 1):
            k = key_b(j)
            if count_a.get(k) == 1:
                count_b[k] = count_b.get(k, 0) + 1
                pos_b[k] = j
        pairs = [(i, pos_b[k]) for i in range(a0, a1 - n + 1)
                 if count_a[k := key_a(i)] == 1 and count_b.get(k) == 1]
        anchors, end_a, end_b = [], a0, b0
        for i, j in _longest_increasing(pairs):
            if i >= end_a and j >= end_b:  # runs of n units must not overlap
                anchors.append((i, j, n))
                end_a, end_b = i + n, j + n
        if anchors:
            return anchors
    return []


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest run of pairs increasing in both coordinates (pairs already sorted by the first)."""
    import bisect

    tails: list[int] = []
    tail_idx: list[int] = []
    parent = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        pos = bisect.bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tail_idx.append(k)
        else:
            tails[pos] = j
            tail_idx[pos] = k
        parent[k] = tail_idx[pos - 1] if pos else -1
    result = []
    k = tail_idx[-1] if tail_idx else -1
    while k >= 0:
        result.append(pairs[k])
        k = parent[k]
    return result[::-1]


def _regions(ops):
    """Group opcodes into kept runs and changed stretches (a delete and/or insert between keeps)."""
    pending_a: list[str] = []
    pending_b: list[str] = []
    for op, a, b in ops:
        if op == EQUAL:
            if pending_a or pending_b:
                yield False, pending_a, pending_b
                pending_a, pending_b = [], []
            yield True, a, b
        else:
            pending_a += a
            pending_b += b
    if pending_a or pending_b:
        yield False, pending_a, pending_b


def _sentences(blocks: list[str]) -> list[str]:
    """Blocks -> sentence units, each block's last unit ending with '\\n'."""
    units = []
    for block in blocks:
        parts = SENTENCE_END.split(block)
        units.extend(part + " " for part in parts[:-1])
        units.append(parts[-1] + "\n")
    return units


def _words(units: list[str]) -> list[str]:
    return TOKEN.findall("".join(units))


def _emit(out: list[list], op: int, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == op:
        out[-1][1] += text
    else:
        out.append([op, text])


def diff_blocks(old: list[str], new: list[str], timeout: float = 1.0) -> dict:
    """Word-level diff of two block lists. Pure: same inputs, same result.

    >>> result = diff_blocks(["The platform can accelerate facial recognition.", "Closing."],
    ...                      ["The platform can accelerate analytics.", "Closing."])
    >>> result["ops"]
    [[0, 'The platform can accelerate '], [-1, 'facial recognition'], [1, 'analytics'], [0, '.\\nClosing.\\n']]
    >>> result["stats"]["words_removed"], result["stats"]["words_added"], result["stats"]["blocks_changed"]
    (2, 1, 1)
    """
    ops: list[list] = []
    fallback = False
    block_ops, fb = _opcodes(old, new, timeout)
    fallback |= fb
    old_removed = {b for op, a, _ in block_ops if op == DELETE for b in a}
    new_added = {b for op, _, b2 in block_ops if op == INSERT for b in b2}
    moved = old_removed & new_added
    for kept, a_blocks, b_blocks in _regions(block_ops):
        if kept:
            _emit(ops, EQUAL, "".join(block + "\n" for block in a_blocks))
            continue
        sentence_ops, fb = _opcodes(_sentences(a_blocks), _sentences(b_blocks), timeout)
        fallback |= fb
        for s_kept, a_sent, b_sent in _regions(sentence_ops):
            if s_kept:
                _emit(ops, EQUAL, "".join(a_sent))
                continue
            word_ops, fb = _opcodes(_words(a_sent), _words(b_sent), timeout, semantic=True)
            fallback |= fb
            for op, a, b in word_ops:
                _emit(ops, op, "".join(b if op == INSERT else a))
    ops = _tidy(ops)
    return {"ops": ops, "stats": _stats(ops, old, new, moved), "fallback": fallback}


def _tidy(ops: list[list]) -> list[list]:
    """Merge neighbours of the same kind and fold whitespace-only kept runs between changes."""
    out: list[list] = []
    for i, (op, text) in enumerate(ops):
        between_changes = 0 < i < len(ops) - 1 and ops[i - 1][0] != EQUAL and ops[i + 1][0] != EQUAL
        if op == EQUAL and between_changes and text.isspace() and "\n" not in text:
            _emit(out, DELETE, text)
            _emit(out, INSERT, text)
            continue
        _emit(out, op, text)
    # Put deletions before insertions within each changed run, so readers see "old → new".
    result: list[list] = []
    run: list[list] = []
    for op, text in out + [[EQUAL, ""]]:
        if op == EQUAL:
            dels = "".join(t for o, t in run if o == DELETE)
            ins = "".join(t for o, t in run if o == INSERT)
            if dels:
                result.append([DELETE, dels])
            if ins:
                result.append([INSERT, ins])
            run = []
            if text:
                result.append([EQUAL, text])
        else:
            run.append([op, text])
    return result


def _count_words(text: str) -> int:
    return words.count(text)


def _stats(ops: list[list], old: list[str], new: list[str], moved: set[str]) -> dict:
    removed_whole, removed_part = _blocks_touched(ops, DELETE)
    added_whole, added_part = _blocks_touched(ops, INSERT)
    return {
        "words_removed": sum(_count_words(t) for op, t in ops if op == DELETE),
        "words_added": sum(_count_words(t) for op, t in ops if op == INSERT),
        "words_before": _count_words("\n".join(old)),
        "words_after": _count_words("\n".join(new)),
        "blocks_removed": removed_whole,
        "blocks_added": added_whole,
        "blocks_changed": max(removed_part, added_part),
        "blocks_moved": len(moved),
        "chars_removed": sum(len(t) for op, t in ops if op == DELETE),
        "chars_added": sum(len(t) for op, t in ops if op == INSERT),
    }


def _blocks_touched(ops: list[list], side: int) -> tuple[int, int]:
    """Blocks on one side made only of changed words (removed or added whole), and those partly changed."""
    whole = part = 0
    has_kept = has_changed = False
    for op, text in ops:
        if op == -side:
            continue
        for piece in re.split(r"(\n)", text):
            if piece == "\n":
                if has_changed:
                    whole, part = (whole + 1, part) if not has_kept else (whole, part + 1)
                has_kept = has_changed = False
            elif WORD.search(piece):
                has_kept = has_kept or op == EQUAL
                has_changed = has_changed or op != EQUAL
    return whole, part


def old_text(ops: list[list]) -> str:
    return "".join(t for op, t in ops if op != INSERT)


def new_text(ops: list[list]) -> str:
    return "".join(t for op, t in ops if op != DELETE)
