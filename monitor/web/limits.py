"""A cap on request bodies, enforced before authentication and before any route reads a body.

The UI takes bodies only from its two small forms (login, logout), yet anyone who can reach the
server may post to /login: without a cap, one request with a body of hundreds of megabytes is
read into memory. A declared Content-Length over the cap is refused with 413 at once, unread; a
body without one (chunked) is counted as it arrives and refused as soon as it passes the cap, and
the rest of it is never read (the server then closes the connection).
"""
from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse

MAX_BODY = 64 * 1024  # the login form needs well under 1 KB


def too_large(limit: int) -> str:
    return f"request body too large: at most {limit} bytes"


class BodyLimit:
    """ASGI middleware: request bodies of at most `limit` bytes."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and (len(declared) > 18 or int(declared) > self.limit):
            response = PlainTextResponse(too_large(self.limit), status_code=413, headers={"Connection": "close"})
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the route that reads the body: the app's error handler answers 413.
                    raise HTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, counted, send)
