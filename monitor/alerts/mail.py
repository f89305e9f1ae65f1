"""Email over SMTP: multipart/alternative with a plain-text and an HTML part."""
from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

from ..config import EmailChannel
from . import render
from .base import DeliveryError, register
from .message import Message


@register("email")
class EmailSender:
    def __init__(self, channel: EmailChannel, client: httpx.AsyncClient | None = None):
        self.channel = channel

    def compose(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = render.subject(message)
        mail["From"] = self.channel.sender
        mail["To"] = ", ".join(self.channel.to)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain="monitor.local")
        if message.priority:
            mail["X-Priority"] = "1"
        mail.set_content(render.email_text(message))
        mail.add_alternative(render.email_html(message), subtype="html")
        return mail

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._send, self.compose(message))

    def _send(self, mail: EmailMessage) -> None:
        c = self.channel
        where = f"SMTP {c.smtp_host}:{c.smtp_port}"
        try:
            if c.security == "tls":
                smtp = smtplib.SMTP_SSL(c.smtp_host, c.smtp_port, timeout=c.timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout)
            with smtp:
                if c.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if c.username:
                    smtp.login(c.username, c.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where}: login refused ({exc.smtp_code})") from None
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None
        except (ConnectionError, socket.timeout, socket.gaierror, ssl.SSLError, OSError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc.strerror or exc}") from None
