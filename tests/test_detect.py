"""classify() / compare() / passages() / summarise(): what a new version is, and what an alert says
about it."""
from __future__ import annotations

from datetime import datetime, timezone

from monitor.detect import (CONTEXT_CHARS, Earlier, classify, compare, first_version, new_post, passages,
                            previous_lost, previous_unfit)
from monitor.diff import diff_blocks

INTRO = "Agencies across the federal government are moving workloads to the cloud."
ICE = ("This can help employees make more informed decisions faster, with Azure Government enabling them to "
       "process data on edge devices or utilize deep learning capabilities to accelerate facial recognition "
       "and identification.")
OUTRO = "We look forward to continuing to innovate with our government customers."
POST = ["Opening line.", INTRO, ICE, OUTRO, "Closing line."]


def verdict(old, new, restored=None):
    return classify(diff_blocks(old, new), restored)


def test_paragraph_removal_is_removed_and_quotes_its_first_words():
    v = verdict(POST, [p for p in POST if p != ICE])
    assert v.kind == "removed"
    assert v.summary.startswith("removed 1 paragraph, 31 words: 'This can help employees make more informed")
    assert v.summary.endswith("…'") and len(v.summary) < 200, "a long paragraph is quoted, not pasted"
    [p] = v.passages
    assert p["removed"] == ICE and p["added"] == ""
    assert (p["before"], p["after"]) == (INTRO, OUTRO), "context is the neighbouring paragraphs only"


def test_paragraph_addition_is_added():
    v = verdict([INTRO, OUTRO], [INTRO, "A brand new paragraph appears.", OUTRO])
    assert v.kind == "added"
    assert v.summary == "added 1 paragraph, 5 words: 'A brand new paragraph appears.'"
    assert v.passages == [{"removed": "", "added": "A brand new paragraph appears.", "before": INTRO, "after": OUTRO}]


def test_one_word_edit_is_edited_old_to_new_with_context():
    v = verdict(POST, [p.replace("federal", "national") for p in POST])
    assert v.kind == "edited"
    assert v.summary == "edited: 'federal' → 'national'"
    assert v.passages == [{"removed": "federal", "added": "national", "before": "Agencies across the ",
                           "after": " government are moving workloads to the cloud."}]


def test_edits_a_few_words_apart_form_one_readable_passage():
    [p] = verdict(["We saw the big red barn today."], ["We saw the small red house today."]).passages
    assert (p["removed"], p["added"]) == ("big red barn", "small red house")
    assert (p["before"], p["after"]) == ("We saw the ", " today.")


def test_edits_in_two_paragraphs_are_two_passages_in_order():
    new = [INTRO.replace("federal", "national"), ICE, OUTRO.replace("innovate", "build")]
    v = verdict([INTRO, ICE, OUTRO], new)
    assert v.kind == "edited"
    assert v.summary.startswith("edited 2 places: 2 words removed, 2 words added")
    assert [(p["removed"], p["added"]) for p in v.passages] == [("federal", "national"), ("innovate", "build")]


def test_restored_names_the_version_and_when_it_was_first_seen():
    earlier = Earlier(version_id=41, seq=3, first_seen=datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc))
    v = verdict([p for p in POST if p != ICE], POST, restored=earlier)
    assert v.kind == "restored" and v.restored == earlier
    assert v.summary.startswith("restored version 3 (first seen 2024-05-06 07:08 UTC): 31 words back: 'This can help")
    assert v.passages[0]["added"] == ICE


def test_moved_paragraph_is_summarised_as_a_move():
    v = verdict(POST, [POST[0], INTRO, OUTRO, ICE, POST[-1]])
    assert v.summary.startswith("moved 1 paragraph: 'This can help employees")


def test_punctuation_only_change():
    v = verdict([INTRO], [INTRO.replace("cloud.", "cloud!")])
    assert v.kind == "edited" and v.summary == "changed punctuation or symbols" and v.score == 0


def test_score_ranks_paragraph_removal_above_one_word_edit():
    removal = verdict(POST, [p for p in POST if p != ICE]).score
    edit = verdict(POST, [p.replace("federal", "national") for p in POST]).score
    assert 0 < edit < removal <= 1


def test_context_is_trimmed_to_the_nearest_sentence():
    long_para = " ".join(f"Sentence number {i} says something fairly ordinary here." for i in range(12))
    old, new = [long_para + " In the end the final claim of this report is true."], [long_para + " In the end the final claim of this report is false."]
    [p] = passages(diff_blocks(old, new)["ops"])
    assert (p["removed"], p["added"]) == ("true", "false")
    assert p["before"] == "In the end the final claim of this report is "
    assert p["after"] == "."


def test_long_context_is_cut_at_a_word_boundary():
    words = " ".join(f"word{i}" for i in range(100))
    [p] = passages(diff_blocks([f"{words} old {words}"], [f"{words} new {words}"])["ops"])
    assert len(p["before"]) <= CONTEXT_CHARS + 1 and len(p["after"]) <= CONTEXT_CHARS + 1
    assert p["before"].startswith("…") and f" {words} ".endswith(p["before"][1:])
    assert p["after"].endswith("…") and f" {words} ".startswith(p["after"][:-1])


# ---- every decision about a new version is detect's: one record the store keeps -----------------

def test_typography_only_is_formatting_and_names_no_words_changed():
    v = verdict([INTRO, "It’s “done” — for now…"], [INTRO, 'It\'s "done" - for now...'])
    assert (v.kind, v.summary) == ("formatting", "typography only (quotes, dashes, ellipses): no words changed")
    assert v.score == 0 and v.passages, "the passages still show what changed"


def test_typography_back_to_an_earlier_text_is_a_restore_not_formatting():
    earlier = Earlier(version_id=7, seq=1, first_seen=datetime(2024, 5, 6, tzinfo=timezone.utc))
    v = verdict(['It\'s "done".'], ["It’s “done”."], restored=earlier)
    assert v.kind == "restored" and v.restored == earlier


def test_same_text_under_new_settings_is_a_silent_new_baseline():
    v = compare(POST, list(POST))
    assert (v.kind, v.alert) == ("rebaselined", False)
    assert v.summary == "extraction settings changed; text the same"


def test_a_note_on_how_the_text_was_read_leads_the_summary():
    v = compare(POST, [p for p in POST if p != ICE], note="content moved to <main>")
    assert v.kind == "removed" and v.summary.startswith("content moved to <main>; removed 1 paragraph")


def test_a_change_keeps_its_stats_with_the_fallback_flag():
    v = compare(POST, [p.replace("federal", "national") for p in POST])
    assert (v.stats["words_removed"], v.stats["words_added"], v.stats["fallback"]) == (1, 1, False)


def test_a_first_version_alerts_as_itself_and_a_new_post_as_news():
    first = first_version(141)
    assert (first.kind, first.event_kind, first.summary, first.stats) == ("first", "first", "first version: 141 words", {})
    post = new_post(1, "Our policy")
    assert (post.kind, post.event_kind) == ("first", "new_post")
    assert post.event_summary == "new post: Our policy (1 word)"


def test_a_lost_previous_capture_is_a_new_baseline_that_raises_an_error():
    lost = previous_lost(4, "checksum mismatch")
    assert (lost.kind, lost.alert, lost.event_kind) == ("rebaselined", True, "error")
    assert lost.summary.startswith("previous capture v4 missing or damaged (checksum mismatch)")
    unfit = previous_unfit(4, "selector matches nothing")
    assert (unfit.kind, unfit.alert) == ("rebaselined", False), "the user changed the settings: no alert"
