"""The one small interface every channel implements, and its registry (chosen by `type`); what
every channel shares: the error a failed send raises, and keeping secrets out of errors and logs."""
from __future__ import annotations

import logging
from typing import Protocol

import httpx

from ..fetch import retry_after
from .message import Message

# The loggers that may name a request's URL (httpx logs "HTTP Request: POST <url>" at -vv).
REQUEST_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
                   "httpcore.socks", "monitor.alerts")
# Apprise logs the services' own URLs, tokens in them, at INFO and DEBUG: only its warnings are kept.
APPRISE_LOGGER = "apprise"


class DeliveryError(Exception):
    """A failed send. `retry_after`: the receiver said when to come back (seconds). `pause`: the
    whole channel waits before its next send (the receiver throttled us or did not answer)."""

    def __init__(self, message: str, retry_after: float | None = None, pause: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.pause = pause


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


class _Redactor(logging.Filter):
    """Takes the alert channels' secrets out of a log record, message and traceback, before any
    handler sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: left for logging to report
            return True
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


_redactor = _Redactor()


def keep_out_of_logs(secrets: list[str]) -> None:
    """From now on no log line names one of `secrets`, at any verbosity (those of an earlier
    configuration too: a request made under it may still be logged)."""
    _redactor.secrets = sorted(set(_redactor.secrets) | set(filter(None, secrets)))
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).addFilter(_redactor)  # once: a logger keeps one copy of a filter
    apprise = logging.getLogger(APPRISE_LOGGER)
    apprise.addFilter(_redactor)
    apprise.setLevel(max(apprise.level, logging.WARNING))


async def post_json(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], what: str) -> None:
    """POST to a receiver; any failure becomes a DeliveryError that does not contain the URL. A
    429, an answer with Retry-After, or no answer at all pauses the channel. Of the answer's body
    only the start is read (for the error message), however much the receiver sends."""
    try:
        async with client.stream("POST", url, content=body,
                                 headers={"Content-Type": "application/json", "Accept-Encoding": "identity",
                                          **headers}) as response:
            detail = await _start_of(response)  # a short answer read to its end keeps the connection
    except httpx.TimeoutException:
        raise DeliveryError(f"{what}: no answer (timed out)", pause=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}") from None
    refused = refusal(response, what, detail)
    if refused:
        raise refused


def refusal(response: httpx.Response, what: str, detail: str) -> DeliveryError | None:
    """The error a receiver's answer makes (None for a 2xx): a 429, or a 5xx with Retry-After,
    pauses the channel."""
    status = response.status_code
    if status == 429 or status >= 500:
        wait = retry_after(response.headers.get("retry-after"))
        return DeliveryError(f"{what}: HTTP {status}", retry_after=wait, pause=status == 429 or wait is not None)
    if status >= 300:
        return DeliveryError(f"{what}: HTTP {status}: {detail}")
    return None


async def _start_of(response: httpx.Response, size: int = 200) -> str:
    head = b""
    async for chunk in response.aiter_raw():
        head += chunk
        if len(head) >= size:
            break
    return head[:size].decode("utf-8", "replace")
