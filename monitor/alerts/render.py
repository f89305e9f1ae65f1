"""Alert text for each format, from one Message. Page text is data, never markup: it is
HTML-escaped in email, and sent to Slack only in plain_text and rich_text elements (which Slack
does not parse for formatting, mentions or links)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..times import iso
from .message import Message

SLACK_PASSAGES = 5
EMAIL_PASSAGES = 20
TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _counts(message: Message) -> str:
    stats = message.stats
    if not stats:
        return ""
    return f"−{stats.get('words_removed', 0)} / +{stats.get('words_added', 0)} words"


def subject(message: Message) -> str:
    flag = "PRIORITY " if message.priority else ""
    return f"[monitor] {flag}{message.kind}: {message.target}"


def email_text(message: Message) -> str:
    passages, more = message.shown(EMAIL_PASSAGES)
    return _env().get_template("email.txt").render(m=message, passages=passages, more=more, counts=_counts(message))


def email_html(message: Message) -> str:
    passages, more = message.shown(EMAIL_PASSAGES)
    return _env().get_template("email.html").render(m=message, passages=passages, more=more, counts=_counts(message))


def _mrkdwn_escape(text: str) -> str:
    """Slack's escaping for the few mrkdwn fields that carry our own text (names from the config)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int = 3000) -> dict:
    return {"type": "plain_text", "text": (text or " ")[:limit], "emoji": False}


def passage_parts(p: dict) -> list[tuple[str, str]]:
    """A passage as (text, role) runs — role "before", "removed", "arrow", "added" or "after" —
    with a line break where two runs meet without white space: there the diff crossed a paragraph
    boundary ("…securely." / "This can help…"), which must not read as "securely.This"."""
    runs = [(p.get("before") or "", "before"), (p.get("removed") or "", "removed")]
    if p.get("removed") and p.get("added"):
        runs.append((" → ", "arrow"))
    runs += [(p.get("added") or "", "added"), (p.get("after") or "", "after")]
    out: list[tuple[str, str]] = []
    for text, role in runs:
        if not text:
            continue
        previous = out[-1][0] if out else ""
        if previous and not previous[-1].isspace() and not text[0].isspace() and role != "arrow" \
                and out[-1][1] != "arrow":
            out[-1] = (previous + "\n", out[-1][1])
        out.append((text, role))
    return out


_SLACK_STYLE = {"removed": {"strike": True}, "added": {"bold": True}}


def slack(message: Message) -> dict:
    """A Block Kit message."""
    passages, more = message.shown(SLACK_PASSAGES)
    blocks: list[dict] = [
        {"type": "header", "text": _plain(("‼️ " if message.priority else "") + message.title, 150)},
        {"type": "section", "text": _plain(message.summary)},
    ]
    for p in passages:
        parts = [{"type": "text", "text": text, **({"style": _SLACK_STYLE[role]} if role in _SLACK_STYLE else {})}
                 for text, role in passage_parts(p)]
        blocks.append({"type": "rich_text", "elements": [{"type": "rich_text_quote", "elements": parts}]})
    if more:
        blocks.append({"type": "context", "elements": [_plain(f"…{more} more changed passage{'s' * (more > 1)}")]})
    facts = [f for f in (_counts(message), message.versions,
                         f"detected {message.detected_at:%Y-%m-%d %H:%M} UTC") if f]
    if message.keywords:
        facts.append("keywords: " + ", ".join(message.keywords))
    link = f"<{message.change_link}|View the change>" if message.change_link else ""
    if message.screenshot_link:
        link += f"{' · ' if link else ''}<{message.screenshot_link}|Screenshot>"
    if message.archive_url:
        link += f"{' · ' if link else ''}<{message.archive_url}|Archived copy>"
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"<{message.url}|{_mrkdwn_escape(message.target)}>" + (f" · {link}" if link else "")},
        _plain(" · ".join(facts)),
    ]})
    return {"text": _mrkdwn_escape(f"{message.title} — {_counts(message) or message.kind}"), "blocks": blocks,
            "unfurl_links": False, "unfurl_media": False}


def payload(message: Message) -> dict:
    """The webhook's JSON document (documented in docs/alerts.md)."""
    return {
        "alert_id": message.alert_id,
        "kind": message.kind,
        "priority": message.priority,
        "keywords": message.keywords,
        "target": {"name": message.target, "url": message.url},
        "summary": message.summary,
        "detected_at": iso(message.detected_at),
        "versions": {"from": message.from_version, "to": message.to_version,
                     "restored": message.restored_version,
                     "restored_first_seen": iso(message.restored_first_seen)},
        "passages": message.passages,
        "stats": message.stats,
        "links": {"change": message.change_link, "target": message.target_link,
                  "screenshot": message.screenshot_link, "archive": message.archive_url},
    }
