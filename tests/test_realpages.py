"""Every edit on real pages: bench/realpages.py on a small fixed sample of the public real-page
corpus (../shared/corpus/realpages, or REALPAGES_DIR), through the real CLI at zero config.

The sample holds pages the old scope rules got wrong: an article in many sibling sections whose
edits went unseen (0145), a streamed page whose article sits in a hidden <div> until a script
moves it ("page has no text content", 0097), a page builder whose containers are named
`WidgetWrapper` (0187), a "more on this story" list whose reordering alerted (guardian-1), and a
page read whole whose cookie banner alerted (0118)."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import realpages  # noqa: E402

SAMPLE = ["0145", "0097", "0187", "guardian-1", "0118"]

pytestmark = pytest.mark.skipif(not (realpages.CORPUS / "manifest.tsv").exists(),
                                reason=f"no real-page corpus at {realpages.CORPUS}")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    chosen = realpages.choose(realpages.manifest(), None, SAMPLE)
    with_trafilatura = importlib.util.find_spec("trafilatura") is not None
    return realpages.evaluate(chosen, tmp_path_factory.mktemp("realpages"), with_trafilatura=with_trafilatura)


def test_every_article_edit_alerts_with_its_words(result):
    table = result["tables"]["monitor"]
    for kind in realpages.EDITS:
        row = table[kind]
        assert row["n"] >= len(SAMPLE) - 1, (kind, row)
        assert row["right"] == row["n"], (kind, row, realpages.misses(result))


def test_chrome_only_changes_stay_quiet_and_no_check_fails(result):
    table = result["tables"]["monitor"]
    for key in (*realpages.CHROME, realpages.ALL_AT_ONCE, "before edits", "chrome pages"):
        assert table[key]["false alerts"] == 0 and table[key]["check failed"] == 0, (
            key, table[key], realpages.misses(result))


def test_never_worse_than_trafilatura_on_the_same_pairs(result):
    if len(result["tables"]) < 2:
        pytest.skip("trafilatura is not installed (pip install trafilatura)")
    assert realpages.goal(*result["tables"].values()) == []
