"""The change-kind vocabulary is defined once (monitor/kinds.py) and every consumer knows every
kind: a title for alerts and pages, whether channels send it by default, the JSON schema, the
config's channel `kinds`, and a badge style in the web UI."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT
from monitor import kinds, schema
from monitor.config import Channel

CSS = (ROOT / "monitor" / "web" / "static" / "style.css").read_text()


def _enum(model, field: str) -> set[str]:
    return set(model.model_json_schema()["properties"][field]["enum"])


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_every_kind_is_known_everywhere(name):
    kind = kinds.KINDS[name]
    assert kind.title and kinds.title(name) == kind.title
    assert isinstance(kind.alerts, bool)
    assert re.search(rf"\.k-{re.escape(name)}\b", CSS), f"no badge style for {name}"
    if kind.event:
        assert name in _enum(schema.Event, "kind")
        assert Channel.model_validate({"kinds": [name]}).kinds == (name,)  # a channel may ask for it
        assert (name in Channel.model_fields["kinds"].default) == kind.alerts
    if kind.change:
        assert name in _enum(schema.Change, "kind")


def test_titles_are_distinct_and_the_edit_kinds_are_the_changes_a_reviewer_reads():
    titles = [k.title for k in kinds.KINDS.values()]
    assert len(set(titles)) == len(titles)
    assert set(kinds.EDITS) == {"added", "removed", "edited", "restored"}
    assert _enum(schema.Event, "kind") == set(kinds.EVENTS)
    assert _enum(schema.Change, "kind") == set(kinds.CHANGES)
