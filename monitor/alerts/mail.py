"""Email over SMTP: multipart/alternative with a plain-text and an HTML part."""
from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import ssl
import threading
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
        c = self.channel
        if c.security == "tls":
            smtp = smtplib.SMTP_SSL(timeout=c.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(timeout=c.timeout)
        smtp._host = c.smtp_host  # what SMTP(host) sets for TLS; connecting waits for the thread
        try:
            await in_thread(self._send, smtp, self.compose(message))
        except asyncio.CancelledError:  # abandoned (the delivery pass is over): hang up on the server
            if smtp.sock is not None:
                with contextlib.suppress(OSError):
                    smtp.sock.shutdown(socket.SHUT_RDWR)
            raise

    def _send(self, smtp: smtplib.SMTP, mail: EmailMessage) -> None:
        c = self.channel
        where = f"SMTP {c.smtp_host}:{c.smtp_port}"
        try:
            with smtp:
                smtp.connect(c.smtp_host, c.smtp_port)
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
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc.strerror or exc}",
                                pause=isinstance(exc, socket.timeout)) from None


async def in_thread(func, *args):
    """`func(*args)` in a daemon thread: unlike asyncio.to_thread's pool, one that hangs (an SMTP
    server that never answers) keeps neither a cancelled caller nor the exiting process waiting."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result, error) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            outcome = (func(*args), None)
        except BaseException as exc:  # handed to the caller
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, daemon=True, name="monitor-smtp").start()
    return await future
