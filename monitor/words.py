"""What counts as a word, in one place: every count a user sees (a version's words, a change's
words removed and added, "of N words") uses this, so history, the change page, alerts and the API
agree.

A word is a run of letters and digits, as the word diff splits text: "U.S." and "it's" count
two each, a dash or a bullet none. The diff's counts then add up exactly: the words before, less
those removed, plus those added, are the words after.

>>> count("Azure Government — it's a U.S. agency's cloud")
10
"""
from __future__ import annotations

import re

WORD = re.compile(r"\w+")


def count(text: str) -> int:
    return len(WORD.findall(text))


def plural(n: int, noun: str) -> str:
    """A count with its noun, as people write it.

    >>> plural(1, "target"), plural(2, "post"), plural(10000, "URL")
    ('1 target', '2 posts', '10,000 URLs')
    """
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
