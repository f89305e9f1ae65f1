"""Generic webhooks: the documented JSON payload, signed with HMAC-SHA256 when a secret is set.

Receivers verify `X-Monitor-Signature: sha256=<hex>` = HMAC-SHA256(secret, raw request body).
"""
from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from ..config import WebhookChannel
from . import render
from .base import post_json, register
from .message import Message

SIGNATURE_HEADER = "X-Monitor-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@register("webhook")
class WebhookSender:
    def __init__(self, channel: WebhookChannel, client: httpx.AsyncClient):
        self.channel = channel
        self.client = client

    async def send(self, message: Message) -> None:
        body = json.dumps(render.payload(message), ensure_ascii=False).encode("utf-8")
        headers = {SIGNATURE_HEADER: signature(self.channel.secret, body)} if self.channel.secret else {}
        await post_json(self.client, self.channel.url, body, headers, "webhook")
