"""The one small interface every channel implements, and its registry (chosen by `type`)."""
from __future__ import annotations

import email.utils
from typing import Protocol

import httpx

from .message import Message


class DeliveryError(Exception):
    """A failed send. `retry_after`: the receiver said when to come back (seconds)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Sender(Protocol):
    async def send(self, message: Message) -> None: ...


REGISTRY: dict[str, type] = {}


def register(kind: str):
    def wrap(cls):
        REGISTRY[kind] = cls
        return cls

    return wrap


def redact(text: str, secrets: list[str]) -> str:
    """Never let a webhook URL, password or token reach a log line or a stored error."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "[secret]")
    return text


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from ..models import utcnow

    return max(0.0, (when - utcnow()).total_seconds())


async def post_json(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], what: str) -> None:
    """POST to a receiver; any failure becomes a DeliveryError that does not contain the URL."""
    try:
        response = await client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.TimeoutException:
        raise DeliveryError(f"{what}: timed out") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise DeliveryError(f"{what}: HTTP {response.status_code}", retry_after=retry_after(response))
    if response.status_code >= 300:
        raise DeliveryError(f"{what}: HTTP {response.status_code}: {response.text[:200]}")
