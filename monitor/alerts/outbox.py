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
from collections import Counter, deque
from datetime import datetime, timedelta

import httpx

from ..config import Settings
from ..models import Alert, utcnow
from ..store import Store
from .base import REGISTRY, DeliveryError, keep_out_of_logs, redact
from .message import Message, from_context
from .routing import SAVE_PAGE_NOW, TIMESTAMP
from . import apprise_services, mail, slack, webhook  # noqa: F401  (they register themselves)

log = logging.getLogger("monitor.alerts")
MAX_DELAY = 3600.0  # the longest retry delay
SEND_TIMEOUT = 10.0  # a receiver's time to answer; also the least time a delivery pass gets
MIN_PAUSE = 1.0  # the shortest pause of a channel that was throttled or did not answer
BATCH = 100  # alerts read from the outbox at a time


def backoff(attempts: int, base: float) -> float:
    return min(MAX_DELAY, base * 2 ** attempts) * random.uniform(0.8, 1.2)


class Outbox:
    """Delivers the outbox in rounds. In a round each channel has its own queue, sent in order,
    the channels side by side: a slow or hanging receiver holds back only its own channel. A
    round has a time budget; a send still in flight when it is spent is abandoned (the alert
    stays pending and is retried later). A receiver that throttles (429, Retry-After) or does
    not answer pauses its whole channel."""

    def __init__(self, store: Store, settings: Settings, client: httpx.AsyncClient | None = None):
        self.store = store
        self.settings = settings
        self._client = client
        self.wake = asyncio.Event()
        self.paused: dict[str, datetime] = {}  # channel -> until when it sends nothing

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._settings = settings
        keep_out_of_logs([secret for channel in settings.config.alerts.values() for secret in channel.secrets()])

    async def __aenter__(self) -> "Outbox":
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(SEND_TIMEOUT), follow_redirects=False,
                                             headers={"User-Agent": self.settings.monitor.user_agent})
            self._owns_client = True
        return self

    async def __aexit__(self, *exc) -> None:
        if getattr(self, "_owns_client", False):
            await self._client.aclose()

    def sender(self, channel_name: str):
        channel = self.settings.config.alerts.get(channel_name)
        if channel is None and channel_name == SAVE_PAGE_NOW and self.settings.monitor.save_page_now:
            from .archive import SavePageNow

            sender = SavePageNow(self.settings.monitor, self._client, self.store)
            return sender, sender.secrets()
        if channel is None and channel_name == TIMESTAMP and self.settings.monitor.timestamp_url:
            from ..timestamps import Stamper

            return Stamper(self.settings.monitor.timestamp_url, self._client, self.store), []
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

    async def deliver(self, budget: float = SEND_TIMEOUT, patience: float = 0.0, everything: bool = False,
                      pending_now: bool = False) -> dict[int, str]:
        """One round of at most `budget` seconds over every due alert (`pending_now`: every
        pending one; `everything`: the failed ones too), read in batches. A paused channel waits
        for its pause to end when that is within `patience` seconds, else it stops for this
        round. Returns each tried alert's outcome (sent, retrying or failed)."""
        loop = asyncio.get_running_loop()
        deadline, patient_until = loop.time() + budget, loop.time() + min(patience, budget)
        states = ("pending", "failed") if everything else ("pending",)
        due_only = not (everything or pending_now)
        queues: dict[str, deque[Alert]] = {}
        workers: dict[str, asyncio.Task] = {}
        stopped: set[str] = set()
        outcomes: dict[int, str] = {}
        after, more, idle = 0, True, True
        try:
            while True:
                while more and idle:  # read on until a channel that is free to send has work
                    batch = self.store.claim_alerts(utcnow(), limit=BATCH, states=states, due_only=due_only,
                                                    after=after)
                    more = bool(batch)
                    after = batch[-1].id if batch else after
                    for alert in batch:
                        if alert.channel not in stopped:
                            queues.setdefault(alert.channel, deque()).append(alert)
                    for channel, queue in queues.items():
                        if queue and channel not in workers and channel not in stopped:
                            workers[channel] = asyncio.create_task(
                                self._send_queue(channel, queue, patient_until, outcomes))
                            idle = False
                if not workers:
                    return outcomes
                done, _ = await asyncio.wait(workers.values(), timeout=deadline - loop.time(),
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    return outcomes  # the budget is spent: `finally` abandons the sends in flight
                for channel in [c for c, task in workers.items() if task in done]:
                    workers.pop(channel).result()
                    if queues[channel]:
                        stopped.add(channel)  # paused past this round
                    else:
                        idle = True
        finally:
            for task in workers.values():
                task.cancel()
            await asyncio.gather(*workers.values(), return_exceptions=True)

    async def _send_queue(self, channel: str, queue: deque[Alert], patient_until: float,
                          outcomes: dict[int, str]) -> None:
        """Send a channel's alerts in order. While the channel is paused, wait for the end of the
        pause, or stop (leaving the rest queued and postponed) if that is too far off."""
        loop = asyncio.get_running_loop()
        while queue:
            pause = self.paused.pop(channel, None)
            left = (pause - utcnow()).total_seconds() if pause else 0.0
            if left > 0:
                if loop.time() + left > patient_until:
                    self._pause(channel, pause)  # alerts queued since the pause began wait too
                    return
                await asyncio.sleep(left)
            alert = queue[0]
            outcomes[alert.id] = await self._deliver_one(alert)
            if outcomes[alert.id] != "retrying" or channel not in self.paused:
                queue.popleft()  # a throttled alert stays first, to go again when the pause ends

    def _pause(self, channel: str, until: datetime) -> None:
        """The channel sends nothing before `until`; its pending alerts are postponed to then, so
        a later run or round keeps the pause too."""
        self.paused[channel] = until
        self.store.postpone_alerts(channel, until)

    async def _deliver_one(self, alert: Alert) -> str:
        sender, secrets = self.sender(alert.channel)
        if sender is None:
            self.store.mark_alert(alert.id, "failed", utcnow(), f"alert channel {alert.channel!r} is no longer configured")
            return "failed"
        ctx = self.store.alert_context(alert)
        row = ctx["target"]
        watch = self.settings.watch(row.name, self.store.site_names().get(row.site_id) if row.site_id else None)
        message = from_context(ctx, self.settings.monitor.base_url, watch.keywords if watch else [])
        self.store.sending(alert.id)
        try:
            await sender.send(message)
        except asyncio.CancelledError:
            self._failed(alert, DeliveryError("no answer before the delivery pass's time was up", pause=True),
                         secrets)
            self.store.maybe_delivered(alert.id)
            raise
        except Exception as exc:  # a channel bug must not stop the others
            return self._failed(alert, exc, secrets)
        self.store.mark_alert(alert.id, "sent", utcnow())
        log.info("alert %s (%s, %s) sent to %s", alert.id, message.kind, message.target, alert.channel)
        return "sent"

    def _failed(self, alert: Alert, exc: Exception, secrets: list[str]) -> str:
        """Record a failed send: retry later (pausing the channel if the receiver asked for it or
        did not answer), or give up on an alert older than alert_max_age."""
        error = redact(str(exc) if isinstance(exc, DeliveryError) else f"internal error: {type(exc).__name__}: {exc}",
                       secrets)
        now = utcnow()  # Retry-After counts from the answer, not from when we started
        delay = exc.retry_after if isinstance(exc, DeliveryError) and exc.retry_after is not None else None
        delay = delay if delay is not None else backoff(alert.attempts, self.settings.monitor.alert_retry)
        alert.attempts += 1
        if isinstance(exc, DeliveryError) and exc.pause:
            delay = max(delay, MIN_PAUSE)
            self._pause(alert.channel, now + timedelta(seconds=delay))
        if (now - alert.created_at).total_seconds() >= self.settings.monitor.alert_max_age:
            self.store.mark_alert(alert.id, "failed", now, error)
            log.error("alert %s to %s failed for good: %s", alert.id, alert.channel, error)
            return "failed"
        self.store.mark_alert(alert.id, "pending", now, error, next_attempt_at=now + timedelta(seconds=delay))
        log.warning("alert %s to %s not delivered (retry in %.0fs): %s", alert.id, alert.channel, delay, error)
        return "retrying"

    async def drain(self, wait: float, everything: bool = False) -> Counter:
        """Deliver what is due (`everything`: every pending and failed alert), then keep retrying
        while retries fall due within `wait` seconds (e.g. a Slack 429 with Retry-After: 2). The
        whole takes at most `wait` seconds, or SEND_TIMEOUT if that is longer: however small
        `wait`, each channel gets the time of one send."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        budget_end, wait_end = start + max(wait, SEND_TIMEOUT), start + wait
        outcomes = await self.deliver(budget_end - start, wait, everything=everything)
        while (due := self.store.next_alert_due()) is not None:
            delay = max(0.0, (due - utcnow()).total_seconds())
            if loop.time() + delay >= wait_end:
                break
            await asyncio.sleep(delay)
            outcomes.update(await self.deliver(budget_end - loop.time(), wait_end - loop.time()))
        return Counter(outcomes.values())

    async def run(self, stopping: asyncio.Event, every: float = 5.0) -> None:
        """The daemon's delivery loop: a round, then sleep until the next retry falls due, a new
        alert is queued (`wake`), or `every` seconds pass. The first round tries every pending
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
