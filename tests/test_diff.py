"""diff_blocks(): the word-level diff every change report is built from."""
from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from monitor.diff import DELETE, EQUAL, INSERT, diff_blocks


def doc(blocks: list[str]) -> str:
    return "".join(block + "\n" for block in blocks)


def texts(result: dict, op: int) -> list[str]:
    return [text for kind, text in result["ops"] if kind == op]


def nwords(text: str) -> int:
    return len(re.findall(r"\w+", text))


def assert_consistent(old: list[str], new: list[str], result: dict) -> None:
    ops, stats = result["ops"], result["stats"]
    assert "".join(t for op, t in ops if op != INSERT) == doc(old)
    assert "".join(t for op, t in ops if op != DELETE) == doc(new)
    assert all(text for _, text in ops), "no empty ops"
    for (op1, _), (op2, _) in zip(ops, ops[1:]):
        assert op1 != op2, "neighbouring ops of one kind are merged"
        assert (op1, op2) != (INSERT, DELETE), "a change reads old → new"
    assert stats["words_before"] == sum(nwords(b) for b in old)
    assert stats["words_after"] == sum(nwords(b) for b in new)
    assert stats["words_removed"] == sum(nwords(t) for t in texts(result, DELETE))
    assert stats["words_added"] == sum(nwords(t) for t in texts(result, INSERT))
    assert stats["words_before"] - stats["words_removed"] + stats["words_added"] == stats["words_after"]


# --- property: whatever the edit, the ops rebuild both documents --------------------------------

VOCAB = ["the", "river", "a", "café", "naïve", "Zürich", "日本語", "42", "don't", "x", "mountain", "🙂", "e\u0301"]
word = st.builds(lambda w, p: w + p, st.sampled_from(VOCAB), st.sampled_from(["", "", ".", ",", "!", "?", "…", ":"]))
block = st.lists(word, min_size=1, max_size=12).map(" ".join)
blocks = st.lists(block, max_size=8)


@st.composite
def edited(draw):
    """A document and an edited copy: blocks deleted, inserted, moved, words replaced."""
    old = draw(blocks)
    new = list(old)
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["delete", "insert", "move", "word"]))
        if action == "insert" or not new:
            new.insert(draw(st.integers(0, len(new))), draw(block))
        elif action == "delete":
            del new[draw(st.integers(0, len(new) - 1))]
        elif action == "move":
            moved = new.pop(draw(st.integers(0, len(new) - 1)))
            new.insert(draw(st.integers(0, len(new))), moved)
        else:
            i = draw(st.integers(0, len(new) - 1))
            words = new[i].split(" ")
            words[draw(st.integers(0, len(words) - 1))] = draw(word)
            new[i] = " ".join(words)
    return old, new


@settings(max_examples=300, deadline=None)
@given(st.one_of(edited(), st.tuples(blocks, blocks)))
def test_ops_rebuild_old_and_new_documents(pair):
    old, new = pair
    result = diff_blocks(old, new)
    assert_consistent(old, new, result)
    assert not result["fallback"]


@settings(max_examples=100, deadline=None)
@given(blocks)
def test_identical_documents_have_no_changes(same):
    result = diff_blocks(same, list(same))
    assert result["ops"] == ([[EQUAL, doc(same)]] if same else [])
    assert result["stats"]["words_removed"] == result["stats"]["words_added"] == 0


# --- the cases a reader of a change report cares about -------------------------------------------

A = "Agencies across the federal government are moving workloads to the cloud."
B = "This can help employees make informed decisions faster, with deep learning on edge devices."
C = "We look forward to continuing to innovate with our customers."


def test_one_word_edit_is_exactly_that_word():
    old = [A, "The quick brown fox jumps over the lazy dog.", C]
    new = [A, "The quick red fox jumps over the lazy dog.", C]
    result = diff_blocks(old, new)
    assert_consistent(old, new, result)
    assert texts(result, DELETE) == ["brown"] and texts(result, INSERT) == ["red"]
    stats = result["stats"]
    assert (stats["words_removed"], stats["words_added"]) == (1, 1)
    assert (stats["blocks_changed"], stats["blocks_removed"], stats["blocks_added"]) == (1, 0, 0)


def test_removed_paragraph():
    result = diff_blocks([A, B, C], [A, C])
    assert texts(result, DELETE) == [B + "\n"] and texts(result, INSERT) == []
    stats = result["stats"]
    assert stats["words_removed"] == nwords(B) and stats["words_added"] == 0
    assert (stats["blocks_removed"], stats["blocks_changed"], stats["blocks_moved"]) == (1, 0, 0)


def test_added_paragraph():
    result = diff_blocks([A, C], [A, B, C])
    assert texts(result, INSERT) == [B + "\n"] and texts(result, DELETE) == []
    stats = result["stats"]
    assert stats["words_added"] == nwords(B) and stats["words_removed"] == 0
    assert (stats["blocks_added"], stats["blocks_changed"], stats["blocks_moved"]) == (1, 0, 0)


def test_moved_paragraph_is_counted_as_moved():
    old, new = [A, B, C, "Closing words."], [A, C, "Closing words.", B]
    result = diff_blocks(old, new)
    assert_consistent(old, new, result)
    assert texts(result, DELETE) == [B + "\n"] and texts(result, INSERT) == [B + "\n"]
    assert result["stats"]["blocks_moved"] == 1


def test_edit_in_place_is_not_a_move():
    result = diff_blocks([A, B], [A, B.replace("faster", "sooner")])
    assert result["stats"]["blocks_moved"] == 0


def test_unchanged_paragraph_between_two_rewrites_stays_kept():
    old = ["Our prices rose sharply this quarter across every region.", "Contact us.",
           "The board approved the plan unanimously on Monday."]
    new = ["Shipping times improved for most customers in April.", "Contact us.",
           "A new chief executive starts work next month."]
    result = diff_blocks(old, new)
    assert_consistent(old, new, result)
    assert any("\nContact us.\n" in t for t in texts(result, EQUAL))
    assert not any("Contact" in t for t in texts(result, DELETE) + texts(result, INSERT))


@pytest.mark.parametrize("old, new", [([], []), ([], ["Hello world"]), (["Hello world"], [])])
def test_empty_documents(old, new):
    result = diff_blocks(old, new)
    assert_consistent(old, new, result)
    assert result["stats"]["blocks_added"] == len(new) and result["stats"]["blocks_removed"] == len(old)
    assert result["ops"] == ([[INSERT, "Hello world\n"]] if new else [[DELETE, "Hello world\n"]] if old else [])


def test_unicode_words_are_whole_words():
    old = ["Ein Café in Zürich, 日本語 テキスト 🙂 und naïve Gäste."]
    new = ["Ein Café in Zurich, 日本語 テキスト 🙂 und naïve Gäste."]
    result = diff_blocks(old, new)
    assert_consistent(old, new, result)
    assert texts(result, DELETE) == ["Zürich"] and texts(result, INSERT) == ["Zurich"]


# --- a ~1 MB page given as one block ---------------------------------------------------------------

def big_page(sentences: bool, seed: int = 3) -> tuple[str, str, int]:
    """~1 MB of prose from a 1000-word vocabulary in one block, and a copy with 1% of its words,
    scattered at random, replaced by other vocabulary words."""
    rng = random.Random(seed)
    vocab = sorted({"".join(rng.choice("abcdefghijklmnoprstuvw") for _ in range(rng.randint(2, 9)))
                    for _ in range(1100)})[:1000]
    weights = [1 / (rank + 1) for rank in range(len(vocab))]  # Zipf-like, as in real prose
    words: list[str] = []
    while sum(map(len, words)) + len(words) < 1_000_000:
        words += rng.choices(vocab, weights, k=1000)
    positions = sorted(rng.sample(range(0, len(words), 4), len(words) // 100))  # never adjacent
    edited = list(words)
    for p in positions:
        edited[p] = rng.choice([w for w in vocab[:50] if w != words[p]])
    if sentences:  # a full stop after every 15th word
        words, edited = ([w + "." if i % 15 == 14 else w for i, w in enumerate(ws)] for ws in (words, edited))
    return " ".join(words), " ".join(edited), len(positions)


@pytest.mark.parametrize("sentences", [True, False], ids=["prose", "run-on-without-sentence-breaks"])
def test_megabyte_block_with_scattered_edits_is_fast_and_exact(sentences):
    old, new, replaced = big_page(sentences)
    assert len(old) > 900_000 and replaced > 1000
    started = time.perf_counter()
    result = diff_blocks([old], [new])
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"took {elapsed:.1f}s"
    stats = result["stats"]
    assert (stats["words_removed"], stats["words_added"]) == (replaced, replaced), \
        f"expected {replaced} words each way, got {stats['words_removed']}/{stats['words_added']}"
    assert not result["fallback"]
    assert "".join(t for op, t in result["ops"] if op != INSERT) == old + "\n"
    assert "".join(t for op, t in result["ops"] if op != DELETE) == new + "\n"
