"""Shared fixtures: a real HTTP server on loopback whose pages a test switches, and a helper that
runs the real `monitor` command against a real SQLite file in a temporary folder."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main

ROOT = Path(__file__).resolve().parent.parent


class Page:
    def __init__(self, body: bytes | str | None = None, status: int = 200, headers: dict | None = None,
                 conditional: bool = True, handler=None):
        self.body = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        self.status = status
        self.headers = headers if headers is not None else {"Content-Type": "text/html; charset=utf-8"}
        self.conditional = conditional
        self.handler = handler  # optional callable(request_handler) for hostile behaviour


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 with a free port, for a handler class."""

    def _serve(self, handler) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class PageServer(LoopbackServer):
    """Serves Page objects by path on 127.0.0.1; records every request."""

    def __init__(self):
        self.pages: dict[str, Page] = {}
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                page = server.pages.get(self.path.split("?")[0])
                if page is None:
                    page = Page("<html><body><h1>Not Found</h1></body></html>", status=404)
                if page.handler:
                    return page.handler(self)
                etag = '"' + hashlib.sha256(page.body).hexdigest()[:16] + '"'
                if page.conditional and page.status == 200 and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(page.status)
                for key, value in page.headers.items():
                    self.send_header(key, value)
                if page.conditional and page.status == 200:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

        self._serve(Handler)

    def set(self, path: str, body=None, **kwargs) -> None:
        self.pages[path] = body if isinstance(body, Page) else Page(body, **kwargs)


@pytest.fixture
def server():
    srv = PageServer()
    yield srv
    srv.close()


class Workspace:
    """A folder with a targets.toml; runs the real CLI against it."""

    def __init__(self, path: Path):
        self.path = path
        self.config = path / "targets.toml"

    def write_config(self, text: str) -> None:
        self.config.write_text(text)

    def run(self, *args: str, expect: int | None = 0):
        result = CliRunner().invoke(main, [*args[:1], "--config", str(self.config), *args[1:]],
                                    catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code}: {result.output}"
        return result

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)

    def subprocess(self, *args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
        env = dict(env if env is not None else os.environ, PYTHONPATH=str(ROOT))
        return subprocess.run([sys.executable, "-m", "monitor", *args[:1], "--config", str(self.config), *args[1:]],
                              capture_output=True, text=True, env=env, **kwargs)


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace(tmp_path)


def reflected_schema(engine) -> dict:
    """Every table as a database reflects it: columns (type, nullability, server default), keys,
    foreign keys with their names, indexes and unique constraints."""
    from sqlalchemy import inspect

    found = inspect(engine)
    return {table: {
        "columns": sorted((c["name"], str(c["type"]), c["nullable"], str(c["default"]))
                          for c in found.get_columns(table)),
        "primary key": found.get_pk_constraint(table)["constrained_columns"],
        "foreign keys": sorted((f["name"] or "", f["constrained_columns"], f["referred_table"], f["referred_columns"])
                               for f in found.get_foreign_keys(table)),
        "indexes": sorted((i["name"], i["column_names"], bool(i["unique"])) for i in found.get_indexes(table)),
        "unique": sorted((u["name"] or "", u["column_names"]) for u in found.get_unique_constraints(table)),
    } for table in found.get_table_names()}


def assert_same_schema(built, replayed) -> None:
    """A database built from the models has exactly the schema the revisions build, table by table."""
    built, replayed = reflected_schema(built), reflected_schema(replayed)
    assert sorted(built) == sorted(replayed)
    for table in replayed:
        assert built[table] == replayed[table], f"{table}: a new database differs from a migrated one"


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def http_date(ts: float | None = None) -> str:
    return formatdate(ts or time.time(), usegmt=True)


# ---- the daemon as a real process ----------------------------------------------------------

HEAD = """
[monitor]
interval = "{interval}"
jitter = 0
retries = 0
calibrate = false
timeout = "3s"
max_bytes = 500000
"""
TARGET = """
[[targets]]
name = "{name}"
url = "{url}"
selector = "article .entry-content, article p"
"""


def daemon_config(server, names, interval="1s", paths=None):
    text = HEAD.format(interval=interval)
    for name in names:
        text += TARGET.format(name=name, url=server.url((paths or {}).get(name, f"/{name}")))
    return text


class Daemon:
    def __init__(self, workspace, log_name: str = "daemon.log"):
        self.workspace = workspace
        self.log_path = workspace.path / log_name
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "-v", "run", "--config", str(workspace.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def daemon_factory(workspace):
    started = []

    def start():
        daemon = Daemon(workspace, "daemon.log" if not started else f"daemon-{len(started) + 1}.log")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def history(workspace, name):
    result = workspace.run("history", name, "--json", expect=None)
    return json.loads(result.stdout) if result.exit_code == 0 else None


def checked(workspace, name):
    """The target's history once it has at least one version (the daemon registers targets
    before it first checks them)."""
    h = history(workspace, name)
    return h if h and h["versions"] else None


# ---- alert receivers: a local HTTP endpoint and a real SMTP server --------------------------------

class Receiver(LoopbackServer):
    """Records POSTs on 127.0.0.1 (Slack/webhook/Apprise stand-ins); answers from a script of
    (status, headers) responses, then 200."""

    def __init__(self):
        self.posts: list[dict] = []
        self.script: list[tuple[int, dict]] = []
        self.default_status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers = receiver.script.pop(0) if receiver.script else (receiver.default_status, {})
                receiver.posts.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "status": status, "at": time.monotonic()})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._serve(Handler)

    def delivered(self, path: str) -> list[dict]:
        """JSON bodies of the posts to `path` that were accepted (2xx)."""
        return [json.loads(p["body"]) for p in self.posts if p["path"] == path and p["status"] < 300]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class SMTPServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps the messages it receives. It can be
    given a port before it starts, so a test can have mail 'down' and bring it up later."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list = []
        self.controller = None

    def start(self) -> None:
        from email import message_from_bytes, policy

        from aiosmtpd.controller import Controller

        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    server = SMTPServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_down():
    """An SMTP server that is not listening yet: call .start() to bring it up."""
    server = SMTPServer(free_port())
    yield server
    server.stop()
