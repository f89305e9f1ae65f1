"""Every other service Apprise knows (Teams, Discord, Telegram, ntfy, …): `pip install .[apprise]`."""
from __future__ import annotations

import httpx

from ..config import AppriseChannel
from . import render
from .base import DeliveryError, register
from .message import Message


@register("apprise")
class AppriseSender:
    def __init__(self, channel: AppriseChannel, client: httpx.AsyncClient | None = None):
        self.channel = channel

    async def send(self, message: Message) -> None:
        try:
            import apprise
        except ImportError:
            raise DeliveryError("apprise is not installed: pip install 'monitor[apprise]'") from None
        notifier = apprise.Apprise()
        for url in self.channel.urls:
            if not notifier.add(url):
                raise DeliveryError("apprise: a URL in this channel is not valid")
        ok = await notifier.async_notify(title=render.subject(message), body=render.email_text(message),
                                         body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            raise DeliveryError("apprise: at least one service did not accept the notification")
