"""The vocabulary of what can happen to a watched page, defined once.

Config validation (a channel's `kinds`), the JSON schema, alerts, feeds and the web UI all derive
from this table; adding a kind means adding it here, teaching detect (or the check) when it
happens, and testing it.

>>> KINDS["removed"].title, KINDS["removed"].alerts, KINDS["removed"].edit
('Removed', True, True)
>>> EDITS
('removed', 'added', 'edited', 'restored')
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    title: str  # "Removed: NAME" in alerts, feeds and page titles
    alerts: bool  # sent by a channel that does not list its `kinds`
    edit: bool = False  # a change to the page's words, as a reviewer reads them
    change: bool = False  # recorded as a Change between two versions
    event: bool = True  # an event a channel can be sent


_TABLE = (
    Kind("first", "Now watching", alerts=False, change=True),
    Kind("new_post", "New post", alerts=False),
    Kind("removed", "Removed", alerts=True, edit=True, change=True),
    Kind("added", "Added", alerts=True, edit=True, change=True),
    Kind("edited", "Edited", alerts=True, edit=True, change=True),
    Kind("restored", "Restored", alerts=True, edit=True, change=True),
    Kind("formatting", "Typography only", alerts=False, change=True),
    Kind("rebaselined", "Rebaselined", alerts=False, change=True, event=False),
    Kind("gone", "Page gone", alerts=True),
    Kind("error", "Check failing", alerts=True),
    Kind("recovered", "Check recovered", alerts=True),
)
KINDS: dict[str, Kind] = {k.name: k for k in _TABLE}
EVENTS = tuple(k.name for k in _TABLE if k.event)  # what a channel's `kinds` may list
CHANGES = tuple(k.name for k in _TABLE if k.change)  # what a Change row's kind may be
EDITS = tuple(k.name for k in _TABLE if k.edit)  # the changes a reviewer reads
DEFAULT_ALERTS = tuple(k.name for k in _TABLE if k.alerts and k.event)
TEST = Kind("test", "Test alert", alerts=False)  # `monitor test-alert`: not a page's event


def title(name: str) -> str:
    kind = KINDS.get(name) or (TEST if name == TEST.name else None)
    return kind.title if kind else name.replace("_", " ").capitalize()
