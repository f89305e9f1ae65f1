"""Save Page Now: with `[monitor] save_page_now`, every edit (removed, added, edited, restored)
also queues a request to the Wayback Machine to capture the page, as an alert to the channel
routing.SAVE_PAGE_NOW in the same persistent outbox: retried with backoff, a 429 pausing it, never holding up
a check. The capture's public address is stored on the change (`archive_url`); alerts sent after
that carry it.

SPN2: POST the URL to `save_page_now_url` (with `Authorization: LOW ACCESS:SECRET` when
`save_page_now_key` is set); the answer names a job, whose status is read at
`save_page_now_url/status/JOB` until it succeeds. The job is kept on the change, so a retry asks
about the same job rather than capturing the page twice.
"""
from __future__ import annotations

import json

import httpx
from sqlalchemy import select, update

from ..config import MonitorSettings
from ..models import Alert, Change, Event
from ..wayback import replay_base
from .base import DeliveryError, refusal
from .message import Message

PENDING_RETRY = 5.0  # seconds before asking again about a capture still under way
ANSWER_BYTES = 65536


class SavePageNow:
    def __init__(self, monitor: MonitorSettings, client: httpx.AsyncClient, store):
        self.monitor, self.client, self.store = monitor, client, store

    def secrets(self) -> list[str]:
        return [self.monitor.save_page_now_key] if self.monitor.save_page_now_key else []

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.monitor.save_page_now_key:
            headers["Authorization"] = f"LOW {self.monitor.save_page_now_key}"
        return headers

    def _change(self, alert_id: int):
        with self.store.engine.connect() as conn:
            return conn.execute(select(Change.id, Change.archive_url, Change.archive_job)
                                .join(Event, Event.change_id == Change.id).join(Alert, Alert.event_id == Event.id)
                                .where(Alert.id == alert_id)).first()

    def _keep(self, change_id: int, **values) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(Change).where(Change.id == change_id).values(**values))

    async def send(self, message: Message) -> None:
        change = self._change(message.alert_id) if message.alert_id is not None else None
        if change is None or change.archive_url:
            return
        job = change.archive_job
        if job is None:
            job = await self._request(message.url)
            self._keep(change.id, archive_job=job)
        status = await exchange(self.client, "GET", f"{self.monitor.save_page_now_url.rstrip('/')}/status/{job}",
                                self._headers(), "Save Page Now status")
        state = status.get("status")
        if state == "success" and str(status.get("timestamp", "")).isdigit():
            original = status.get("original_url") or message.url
            self._keep(change.id, archive_url=f"{replay_base(self.monitor.save_page_now_url)}"
                                              f"{status['timestamp']}/{original}", archive_job=None)
            return
        if state == "pending":
            raise DeliveryError("Save Page Now: capture still under way", retry_after=PENDING_RETRY)
        self._keep(change.id, archive_job=None)  # a failed job: the next try asks for a new capture
        raise DeliveryError(f"Save Page Now: capture failed: {str(status.get('message') or state)[:200]}")

    async def _request(self, url: str) -> str:
        """Ask for a capture of `url`; the job's id."""
        answer = await exchange(self.client, "POST", self.monitor.save_page_now_url, self._headers(), "Save Page Now",
                                form={"url": url})
        job = answer.get("job_id")
        if not isinstance(job, str) or not job or "/" in job:
            raise DeliveryError(f"Save Page Now: no capture job in the answer: {str(answer.get('message', answer))[:200]}")
        return job


async def exchange(client: httpx.AsyncClient, method: str, url: str, headers: dict, what: str,
                   form: dict | None = None) -> dict:
    """One request (a form POSTed, or a GET); its JSON answer, at most ANSWER_BYTES read. A refusal
    is a DeliveryError as for every channel (a 429 pauses the channel until its Retry-After)."""
    if form is not None:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    content = str(httpx.QueryParams(form)).encode("ascii") if form is not None else None
    try:
        async with client.stream(method, url, content=content, headers=headers) as response:
            data = b""
            async for chunk in response.aiter_raw():
                data += chunk
                if len(data) > ANSWER_BYTES:
                    raise DeliveryError(f"{what}: answer too long")
    except httpx.TimeoutException:
        raise DeliveryError(f"{what}: no answer (timed out)", pause=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}") from None
    refused = refusal(response, what, data[:200].decode("utf-8", "replace"))
    if refused:
        raise refused
    try:
        answer = json.loads(data)
    except ValueError:
        raise DeliveryError(f"{what}: not a JSON answer") from None
    if not isinstance(answer, dict):
        raise DeliveryError(f"{what}: not a JSON object: {str(answer)[:200]}")
    return answer
