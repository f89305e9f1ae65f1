"""robots.txt rules (RFC 9309) and the in-memory cache of them; the Fetcher fetches the files.

How an answer for /robots.txt is read:
- 2xx: parsed with Protego.
- 4xx (404 and the like): the site has no rules for us, everything is allowed.
- 5xx, 429 or no answer: RFC 9309 section 2.3.1.4 says assume a complete disallow. We follow it,
  but remember that verdict for 10 minutes only, so a flaky robots.txt pauses watching instead
  of ending it.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protego import Protego


ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks parsers to read at least 500 KiB; we stop there
ROBOTS_TTL = 24 * 3600.0  # RFC 9309: a cached robots.txt should not be used for more than 24 h
ROBOTS_ERROR_TTL = 600.0  # how long a 5xx / unreachable robots.txt blocks the host before we ask again
ROBOTS_HOSTS = 1000  # origins kept; the least recently used is dropped past this
MAX_CRAWL_DELAY = 60.0  # a larger Crawl-delay would make a blog of thousands of posts uncheckable


def product_token(user_agent: str) -> str:
    """'monitor/0.1 (web-change monitor ...)' -> 'monitor': RFC 9309 matches groups on the product
    token, so words in the comment part (e.g. 'github' in the URL) cannot select a group."""
    return re.split(r"[/\s]", user_agent.strip(), maxsplit=1)[0] or user_agent


@dataclass
class Rules:
    parser: "Protego | None" = None  # None with no error: everything allowed
    error: str | None = None  # set: robots.txt could not be read, everything disallowed for now
    expires: float = 0.0  # time.monotonic() after which the file is fetched again

    @classmethod
    def from_answer(cls, status: int | None, body: bytes, problem: str | None = None,
                    now: float | None = None) -> "Rules":
        """Rules from the answer to GET /robots.txt: its status and body, or (status None) the
        network problem that kept us from getting one."""
        now = time.monotonic() if now is None else now
        if status is not None and 200 <= status < 300:
            from protego import Protego  # only when a site's robots.txt is read

            text = body.decode("utf-8", errors="replace")
            try:
                return cls(parser=Protego.parse(text), expires=now + ROBOTS_TTL)
            except Exception:  # a file the parser chokes on states no rule we can follow
                return cls(expires=now + ROBOTS_TTL)
        if status is not None and 400 <= status < 500 and status != 429:
            return cls(expires=now + ROBOTS_TTL)
        # 429 is read as "unreachable", as the big crawlers do: the server is refusing us.
        why = f"HTTP {status}" if status is not None else (problem or "no answer")
        return cls(error=f"robots.txt unavailable ({why}); everything is disallowed for "
                         f"{ROBOTS_ERROR_TTL / 60:g} minutes (RFC 9309)", expires=now + ROBOTS_ERROR_TTL)

    def allows(self, url: str, user_agent: str) -> bool:
        if self.error is not None:
            return False
        return self.parser is None or self.parser.can_fetch(url, product_token(user_agent))

    def crawl_delay(self, user_agent: str) -> float:
        """The Crawl-delay for us in seconds (0 when there is none), capped at MAX_CRAWL_DELAY."""
        if self.parser is None:
            return 0.0
        try:
            delay = self.parser.crawl_delay(product_token(user_agent))
        except Exception:
            delay = None
        return min(float(delay or 0.0), MAX_CRAWL_DELAY)


class RobotsCache:
    """Rules by origin (scheme://host:port), each for its own time to live, at most `size` origins
    (least recently used dropped), so watching many sites keeps memory bounded."""

    def __init__(self, size: int = ROBOTS_HOSTS):
        self.size = size
        self._rules: OrderedDict[str, Rules] = OrderedDict()

    def get(self, origin: str, now: float | None = None) -> Rules | None:
        rules = self._rules.get(origin)
        if rules is None:
            return None
        if rules.expires <= (time.monotonic() if now is None else now):
            del self._rules[origin]
            return None
        self._rules.move_to_end(origin)
        return rules

    def put(self, origin: str, rules: Rules) -> None:
        self._rules[origin] = rules
        self._rules.move_to_end(origin)
        while len(self._rules) > self.size:
            self._rules.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rules)
