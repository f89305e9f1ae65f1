"""Slack incoming webhooks: a Block Kit message."""
from __future__ import annotations

import json

import httpx

from ..config import SlackChannel
from . import render
from .base import post_json, register
from .message import Message


@register("slack")
class SlackSender:
    def __init__(self, channel: SlackChannel, client: httpx.AsyncClient):
        self.channel = channel
        self.client = client

    async def send(self, message: Message) -> None:
        body = json.dumps(render.slack(message), ensure_ascii=False).encode("utf-8")
        await post_json(self.client, self.channel.webhook_url, body, {}, "Slack webhook")
