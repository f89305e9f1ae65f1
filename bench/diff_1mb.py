"""Word diff of a ~1 MB page with 1% of its words replaced at scattered places.

Compares plain diff-match-patch on the whole text (what a naive monitor does, default 1 s
deadline) with monitor.diff.diff_blocks, in the same process on the same input:
    python bench/diff_1mb.py
"""
from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diff_match_patch import diff_match_patch  # noqa: E402

from monitor.diff import diff_blocks  # noqa: E402

WORDS = [w.lower() for w in re.findall(r"[A-Za-z]+", Path(__file__).read_text())] * 3


def page(rng: random.Random, paragraphs: bool) -> tuple[list[str], list[str], int]:
    words = [rng.choice(WORDS) for _ in range(170_000)]
    edited = list(words)
    changed = rng.sample(range(len(words)), len(words) // 100)
    for i in changed:
        edited[i] = "CHANGED"
    if paragraphs:  # ~1,700 paragraphs of 100 words
        split = lambda ws: [" ".join(ws[i:i + 100]) + "." for i in range(0, len(ws), 100)]  # noqa: E731
        return split(words), split(edited), len(changed)
    return [" ".join(words)], [" ".join(edited)], len(changed)


def main() -> None:
    rng = random.Random(1)
    for paragraphs in (True, False):
        old, new, changed = page(rng, paragraphs)
        size = sum(map(len, old))
        dmp = diff_match_patch()
        dmp.Diff_Timeout = 1.0
        t = time.perf_counter()
        naive = dmp.diff_main("\n".join(old), "\n".join(new))
        naive_s = time.perf_counter() - t
        t = time.perf_counter()
        ours = diff_blocks(old, new)
        ours_s = time.perf_counter() - t
        label = "1,700 paragraphs" if paragraphs else "one run-on block"
        print(f"{label}: {size / 1e6:.2f} MB, {changed} words replaced")
        print(f"  plain dmp, 1 s deadline: {naive_s:5.2f} s, {len(naive)} ops")
        print(f"  monitor.diff:            {ours_s:5.2f} s, {len(ours['ops'])} ops, "
              f"-{ours['stats']['words_removed']} +{ours['stats']['words_added']} words, "
              f"coarse fallback: {ours['fallback']}")


if __name__ == "__main__":
    main()
