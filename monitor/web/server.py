"""Run the app under uvicorn: alone (`monitor serve`) or in the daemon's event loop (`monitor run
--serve`). The socket is bound before anything else starts, so a port in use or an address that
needs a password is reported at once, and the daemon never starts half-way."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from typing import Awaitable
from urllib.parse import urlsplit

import uvicorn

from ..config import Settings
from ..store import Store
from .app import create_app
from .auth import Auth, ServeError

log = logging.getLogger("monitor.web")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `monitor serve` and the daemon stop it themselves,
    so SIGTERM ends the process with status 0, like the daemon."""

    def capture_signals(self):
        return contextlib.nullcontext()


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


class WebServer:
    def __init__(self, settings: Settings, store: Store, host: str = "127.0.0.1", port: int = 8000):
        auth = Auth.from_settings(settings.monitor)
        auth.check_binding(host)
        self.socket = _bind(host, port)
        bound = self.socket.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"http://{shown}:{bound[1]}/"
        # Behind a proxy at base_url's path (say /monitor), links carry that prefix.
        root_path = urlsplit(settings.monitor.base_url or "").path.rstrip("/")
        config = uvicorn.Config(create_app(settings, store, auth), lifespan="off", log_config=None,
                                root_path=root_path, server_header=False)
        self.server = _Server(config)

    def stop(self) -> None:
        self.server.should_exit = True

    async def serve(self) -> None:
        await self.server.serve(sockets=[self.socket])

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (or stop())."""

        async def main() -> None:
            if threading.current_thread() is threading.main_thread():
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.stop)
            await self.serve()

        asyncio.run(main())

    async def alongside(self, daemon: Awaitable, stopping: asyncio.Event) -> None:
        """Run the daemon and the server together in this loop (the daemon handles the signals):
        when the daemon stops, so does the server, and if the server fails, the daemon stops."""
        server = asyncio.create_task(self.serve())
        server.add_done_callback(lambda _: stopping.set())
        log.info("web UI on %s", self.url)
        try:
            await daemon
        finally:
            self.stop()
            await asyncio.gather(server, return_exceptions=True)
