"""Routing events to channels, and the delivery worker that drains the outbox.

Delivery is at-least-once: an alert is marked sent only after its receiver accepted it, so a
crash between the two may send it again; it is never lost. Failures are retried with exponential
backoff and jitter (honouring Retry-After) until the alert is older than `alert_max_age`, when it
is marked failed with its last error.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from datetime import timedelta

import httpx

from ..config import Settings
from ..models import Alert, utcnow
from ..store import Store
from .base import REGISTRY, DeliveryError, redact
from .message import Message, from_context, keyword_hits
from . import apprise_services, mail, slack, webhook  # noqa: F401  (they register themselves)

log = logging.getLogger("monitor.alerts")
MAX_DELAY = 3600.0


class Router:
    """Which channels an event goes to, and whether it is marked priority."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.targets = {t.name: t for t in settings.targets}

    def __call__(self, target_name: str, kind: str, stats: dict, passages: list,
                 site: str | None = None) -> list[tuple[str, bool]]:
        # A discovered post takes its alert settings (channels, keywords) from its site.
        target = self.settings.site(site) if site else self.targets.get(target_name)
        if target is None:
            return []
        hits = keyword_hits(target.keywords, passages)
        changed = stats.get("words_removed", 0) + stats.get("words_added", 0)
        routes = []
        for name in self.settings.channels_of(target):
            channel = self.settings.config.alerts[name]
            if kind not in channel.kinds:
                continue
            always = kind == "restored" or (kind == "removed" and hits)
            if stats and changed < channel.min_words and not always:
                continue
            routes.append((name, bool(hits)))
        return routes


def backoff(attempts: int, base: float) -> float:
    return min(MAX_DELAY, base * 2 ** attempts) * random.uniform(0.8, 1.2)


class Outbox:
    def __init__(self, store: Store, settings: Settings, client: httpx.AsyncClient | None = None):
        self.store = store
        self.settings = settings
        self._client = client
        self.wake = asyncio.Event()

    async def __aenter__(self) -> "Outbox":
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(20.0), follow_redirects=False,
                                             headers={"User-Agent": self.settings.monitor.user_agent})
            self._owns_client = True
        return self

    async def __aexit__(self, *exc) -> None:
        if getattr(self, "_owns_client", False):
            await self._client.aclose()

    def sender(self, channel_name: str):
        channel = self.settings.config.alerts.get(channel_name)
        if channel is None:
            return None, []
        return REGISTRY[channel.type](channel, self._client), channel.secrets()

    async def send_now(self, channel_name: str, message: Message) -> None:
        """Send one message directly (for `monitor test-alert`); raises DeliveryError."""
        sender, secrets = self.sender(channel_name)
        if sender is None:
            raise DeliveryError(f"no alert channel named {channel_name!r} in {self.settings.path}")
        try:
            await sender.send(message)
        except DeliveryError as exc:
            raise DeliveryError(redact(str(exc), secrets), exc.retry_after) from None

    async def deliver(self, everything: bool = False, pending_now: bool = False) -> dict[int, str]:
        """Send every due alert once. `pending_now`: every pending alert, due or not;
        `everything`: those and the failed ones too. Returns each tried alert's outcome
        (sent, retrying or failed)."""
        states = ("pending", "failed") if everything else ("pending",)
        alerts = self.store.due_alerts(utcnow(), states=states, due_only=not (everything or pending_now))
        return {alert.id: await self._deliver_one(alert) for alert in alerts}

    async def _deliver_one(self, alert: Alert) -> str:
        now = utcnow()
        sender, secrets = self.sender(alert.channel)
        if sender is None:
            self.store.mark_alert(alert.id, "failed", now, f"alert channel {alert.channel!r} is no longer configured")
            return "failed"
        ctx = self.store.alert_context(alert)
        target = self.settings.config.targets
        keywords = next((t.keywords for t in target if t.name == ctx["target"].name), [])
        message = from_context(ctx, self.settings.monitor.base_url, keywords)
        try:
            await sender.send(message)
        except Exception as exc:  # a channel bug must not stop the others
            delay = exc.retry_after if isinstance(exc, DeliveryError) else None
            error = redact(str(exc) if isinstance(exc, DeliveryError) else f"internal error: {type(exc).__name__}: {exc}",
                           secrets)
            now = utcnow()  # Retry-After counts from the answer, not from when we started
            age = (now - alert.created_at).total_seconds()
            if age >= self.settings.monitor.alert_max_age:
                self.store.mark_alert(alert.id, "failed", now, error)
                log.error("alert %s to %s failed for good: %s", alert.id, alert.channel, error)
                return "failed"
            delay = delay if delay is not None else backoff(alert.attempts, self.settings.monitor.alert_retry)
            self.store.mark_alert(alert.id, "pending", now, error, next_attempt_at=now + timedelta(seconds=delay))
            log.warning("alert %s to %s not delivered (retry in %.0fs): %s", alert.id, alert.channel, delay, error)
            return "retrying"
        self.store.mark_alert(alert.id, "sent", now)
        log.info("alert %s (%s, %s) sent to %s", alert.id, message.kind, message.target, alert.channel)
        return "sent"

    async def drain(self, wait: float, everything: bool = False) -> Counter:
        """Deliver what is due, then keep retrying for up to `wait` seconds while retries fall due
        within that time (e.g. a Slack 429 with Retry-After: 2)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        outcomes = await self.deliver(everything)
        while True:
            due = self.store.next_alert_due()
            if due is None:
                break
            delay = max(0.0, (due - utcnow()).total_seconds())
            if loop.time() + delay > deadline:
                break
            await asyncio.sleep(delay)
            outcomes.update(await self.deliver())
        return Counter(outcomes.values())

    async def run(self, stopping: asyncio.Event, every: float = 5.0) -> None:
        """The daemon's delivery loop: deliver, then sleep until the next retry falls due, a new
        alert is queued (`wake`), or `every` seconds pass. The first pass tries every pending
        alert at once: a restart is often what fixed the receiver or its settings."""
        first = True
        while not stopping.is_set():
            try:
                await self.deliver(pending_now=first)
                first = False
            except Exception:
                log.exception("alert delivery pass failed")
            due = self.store.next_alert_due()
            delay = every if due is None else min(every, max(0.05, (due - utcnow()).total_seconds()))
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), delay)
            except TimeoutError:
                pass
