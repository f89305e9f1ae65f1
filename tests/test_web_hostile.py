"""The web server against hostile visitors and concurrent load, as a real `monitor serve` process
(or the real server in a thread) over a history built by the real pipeline: password guessing
through every credential path, huge request bodies, many readers at once, numbers too large for
the database in URLs, and a capture whose Content-Type names a codec that is no text encoding."""
from __future__ import annotations

import os
import random
import re
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

import blog
import story
from conftest import ROOT, Page, PageServer, Workspace, daemon_config, free_port, wait_for
from monitor.web import api, auth, captures, feeds, login, pages
from monitor.web.auth import LOGIN_FAILURES, client_key
from test_web import answers, csrf_of

PASSWORD = "correct horse battery"
TOKEN = "tok-0123456789abcdef"
NAMES = ["alpha-post", "beta-post", "gamma-post", "delta-post"]
VERSIONS = 4
HUGE = ["99999999999999999999", "-99999999999999999999", str(2**63), "9" * 5000]


def page_of(name: str, seq: int) -> str:
    """Version `seq` of a target's page: one paragraph says which, another grows with each version;
    and 100 KB of comments outside the article, so that reading a capture takes a while."""
    paragraphs = [*blog.PARAGRAPHS, f"This is version {seq} of {name}.",
                  " ".join(f"Update {i} to {name}." for i in range(1, seq + 1))]
    rng = random.Random(f"{name}-{seq}")
    words = ["cloud", "agency", "data", "edge", "mission", "secure", "policy", "citizen", "report", "update"]
    comments = "\n".join("<p>" + " ".join(rng.choices(words, k=12)) + f" #{rng.getrandbits(32)}</p>"
                         for _ in range(1000))
    return blog.post(paragraphs, seed=seq).replace("</body>", f'<aside id="comments">{comments}</aside></body>')


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Workspace:
    """Four targets of four versions each, checked by the real CLI; two configs over them:
    targets.toml (no login) and locked.toml (web_password and web_token)."""
    workspace = Workspace(tmp_path_factory.mktemp("hostile"))
    server = PageServer()
    try:
        workspace.write_config(daemon_config(server, NAMES))
        for seq in range(1, VERSIONS + 1):
            for name in NAMES:
                server.set(f"/{name}", page_of(name, seq))
            workspace.run("check")
    finally:
        server.close()
    text = workspace.config.read_text().replace(
        "[monitor]", f'[monitor]\nweb_password = "{PASSWORD}"\nweb_token = "{TOKEN}"', 1)
    (workspace.path / "locked.toml").write_text(text)
    return workspace


def locked(history: Workspace) -> Workspace:
    """The same history, served with a password and a token."""
    workspace = Workspace(history.path)
    workspace.config = history.path / "locked.toml"
    return workspace


class Served:
    """`monitor serve` as a real process on a free loopback port."""

    def __init__(self, config: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(config.parent / f"serve-{port}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve", "--config", str(config), "--port", str(port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wait_for(lambda: answers(self.url + "/static/style.css"), timeout=20)

    def memory(self, field: str) -> int:
        """VmRSS (now) or VmHWM (the peak) of the process, in bytes."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1)) * 1024

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def served(history):
    """The history without login, served by one `monitor serve` for the module's tests."""
    process = Served(history.config)
    yield process
    process.close()


@pytest.fixture
def locked_ui(history):
    ui = story.UI(locked(history))
    yield ui
    ui.close()


# ---- one limit on password guessing, whatever the path ------------------------------------------

def test_guessing_is_limited_across_the_form_basic_and_bearer(locked_ui, monkeypatch):
    ui = locked_ui
    token = csrf_of(ui.get("/login"))
    signed_in = ui.http.post("/login", data={"password": PASSWORD, "csrf": token})
    assert signed_in.status_code == 303
    session = {"monitor_session": ui.http.cookies["monitor_session"]}
    ui.http.cookies.delete("monitor_session")

    guesses = [  # every credential path, with wrong secrets, sharing one count per address
        lambda: ui.get("/api/targets", headers={"Authorization": "Bearer wrong-token-0000"}),
        lambda: ui.get("/changes.atom", auth=("reader", "wrong password")),
        lambda: ui.http.post("/login", data={"password": "wrong password", "csrf": token}),
    ]
    for i in range(LOGIN_FAILURES):
        assert guesses[i % 3]().status_code == 401, i

    right = {
        "bearer": lambda: ui.get("/api/targets", headers={"Authorization": f"Bearer {TOKEN}"}),
        "basic": lambda: ui.get("/changes.atom", auth=("reader", PASSWORD)),
        "basic with the token": lambda: ui.get(f"/raw/{NAMES[0]}/1", auth=("reader", TOKEN)),
        "form": lambda: ui.http.post("/login", data={"password": PASSWORD, "csrf": token}),
    }
    for path, attempt in right.items():
        refused = attempt()
        assert refused.status_code == 429, path
        assert 0 < int(refused.headers["retry-after"]) <= auth.LOGIN_WINDOW, path
        assert "Too many failed attempts from your address" in refused.text, path
        assert "monitor_session" not in refused.headers.get("set-cookie", ""), path
    assert refused.headers["content-type"].startswith("text/html")  # the form says so on the login page
    assert right["bearer"]().json()["detail"].startswith("Too many failed attempts")

    # A reader already logged in is not locked out by guesses from the same address.
    assert httpx.get(ui.url + "/api/targets", cookies=session).status_code == 200

    # Once the window has passed, the right secret opens again on every path.
    monkeypatch.setattr(auth, "LOGIN_WINDOW", 0.5)
    wait_for(lambda: right["bearer"]().status_code == 200, timeout=10)
    assert right["basic"]().status_code == 200 and right["form"]().status_code == 303


def test_the_limit_counts_an_ipv6_client_by_its_64():
    def key(host: str) -> str:
        return client_key({"client": (host, 40000)})

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("192.0.2.7") == key("::ffff:192.0.2.7") == "192.0.2.7"
    assert key("192.0.2.7") != key("192.0.2.8")


# ---- request bodies are capped before anyone logs in --------------------------------------------

BIG = 200 * 1024 * 1024


def post_endless(url: str, head: bytes, chunk: bytes, most: int) -> tuple[int, int]:
    """Send a request head, then `chunk` over and over (at most `most` bytes) as fast as the
    server reads it; stop as soon as it answers. Returns (the answer's status, bytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        sent, answer, sending = 0, b"", True
        while b"\r\n" not in answer:
            readable, writable, _ = select.select([sock], [sock] if sending and sent < most else [], [], 30)
            if not readable and not writable:
                raise AssertionError(f"no answer after {sent} bytes of body")
            if readable:
                data = sock.recv(65536)
                if not data:
                    raise AssertionError(f"connection closed without an answer after {sent} bytes")
                answer += data
            else:
                try:
                    sent += sock.send(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    sending = False  # the server stopped reading: its answer may still be on the way
    return int(answer.split(b" ", 2)[1]), sent


def test_a_huge_body_is_refused_unread_and_the_server_stays_small(history):
    served = Served(locked(history).config)
    try:
        before = served.memory("VmRSS")
        head = "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        declared = (head + f"Content-Length: {BIG}\r\n\r\n").encode()
        status, sent = post_endless(served.url, declared, b"password=" + b"x" * 65536, BIG)
        assert status == 413 and sent < BIG

        block = b"x" * 65536
        chunked = (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
        status, sent = post_endless(served.url, chunked, b"%x\r\n%s\r\n" % (len(block), block), BIG)
        assert status == 413 and sent < BIG

        peak = served.memory("VmHWM")
        assert peak - before < 40 * 1024 * 1024, f"RSS grew from {before >> 20} MB to a peak of {peak >> 20} MB"

        # Still answering, and the login form (a small body) still works.
        with httpx.Client(base_url=served.url) as client:
            token = csrf_of(client.get("/login"))
            response = client.post("/login", data={"password": PASSWORD, "csrf": token, "next": "/sites"})
            assert response.status_code == 303 and response.headers["location"] == "/sites"
            assert client.get("/sites").status_code == 200
        assert served.process.poll() is None and "Traceback" not in served.output(), served.output()
    finally:
        served.close()


# ---- many readers at once ---------------------------------------------------------------------------

ROUTERS = [("/api", api.router), ("", pages.router), ("", captures.router), ("", feeds.router),
           ("", login.router)]


def get_routes() -> set[str]:
    """The app's GET routes, as path templates."""
    return {prefix + route.path for prefix, router in ROUTERS for route in router.routes if "GET" in route.methods}


def change_ids_of(history: Workspace) -> list[int]:
    return [c["id"] for name in NAMES for c in history.json("history", name)["changes"]]


def read_paths(history: Workspace) -> dict[str, list[str]]:
    """Every GET route (by template) and the URLs over this history that read it."""
    change_ids = change_ids_of(history)
    t = NAMES
    versions = [f"/targets/{n}/versions/{v}" for n in t for v in range(1, VERSIONS + 1)]
    return {
        "/": ["/", "/?q=alpha", "/?status=ok", "/?all=1"],
        "/changes": ["/changes", "/changes?everything=1", f"/changes?before={change_ids[0]}"],
        "/sites": ["/sites"],
        "/alerts": ["/alerts", "/alerts?failed=1"],
        "/search": ["/search?q=version+3", "/search?q=federal+government"],
        "/targets/{name}": [f"/targets/{n}" for n in t] + [f"/targets/{t[0]}?per_page=2&page=2"],
        "/changes/{change_id}": [f"/changes/{i}" for i in change_ids] + [f"/changes/{change_ids[0]}?view=side"],
        "/targets/{name}/compare": [f"/targets/{n}/compare?from=1&to={VERSIONS}" for n in t]
                                   + [f"/targets/{t[1]}/compare?from=2&to=3&view=side"],
        "/targets/{name}/versions/{version}": versions,
        "/targets/{name}/versions/{version}/source": [v + "/source" for v in versions],
        "/raw/{name}/{version}": [f"/raw/{n}/{v}" for n in t for v in range(1, VERSIONS + 1)]
                                 + [f"/raw/{t[2]}/2?download=1"],
        "/changes.atom": ["/changes.atom"],
        "/changes.rss": ["/changes.rss"],
        "/targets/{name}/changes.atom": [f"/targets/{n}/changes.atom" for n in t],
        "/targets/{name}/changes.rss": [f"/targets/{n}/changes.rss" for n in t],
        "/login": ["/login"],  # no login configured: a redirect to the dashboard
        "/api/targets": ["/api/targets", "/api/targets?all=true"],
        "/api/sites": ["/api/sites"],
        "/api/targets/{name}": [f"/api/targets/{n}" for n in t],
        "/api/targets/{name}/versions": [f"/api/targets/{n}/versions" for n in t],
        "/api/targets/{name}/versions/{version}": ["/api" + v for v in versions],
        "/api/targets/{name}/changes": [f"/api/targets/{n}/changes" for n in t],
        "/api/targets/{name}/diff": [f"/api/targets/{n}/diff" for n in t]
                                    + [f"/api/targets/{n}/diff?from=1&to={VERSIONS}" for n in t]
                                    + [f"/api/targets/{t[3]}/diff?from=2"],
        "/api/changes": ["/api/changes", "/api/changes?kind=edited&limit=5", f"/api/changes?target={t[0]}"],
        "/api/changes/{change_id}": [f"/api/changes/{i}" for i in change_ids],
        "/api/alerts": ["/api/alerts"],
        "/api/search": ["/api/search?q=Update+2+to"],
        # no TSA in this history: a token that was never stored is a 404, answered like the rest
        "/targets/{name}/timestamps/{head}.tsr": [f"/targets/{n}/timestamps/{'0' * 64}.tsr" for n in t],
    }


CLIENTS = 8
ROUNDS = 2  # each client reads every URL this many times, in its own order


def test_many_clients_reading_every_path_at_once_all_get_answers(history, served):
    paths = read_paths(history)
    assert set(paths) == get_routes(), "a new GET route: add it to read_paths()"
    urls = [u for group in paths.values() for u in group] + ["/api/openapi.json", "/static/style.css"]
    expected = {u: 303 if u == "/login" else 404 if "/timestamps/" in u else 200 for u in urls}
    failures: list[tuple[str, object]] = []
    done = [0]

    def client(n: int) -> None:
        order = urls[n::CLIENTS] + urls[:n] + urls[n:]  # each client starts elsewhere
        with httpx.Client(base_url=served.url, timeout=30) as http:
            for url in order * ROUNDS:
                try:
                    status = http.get(url).status_code
                except httpx.HTTPError as exc:
                    failures.append((url, repr(exc)))
                    return
                done[0] += 1
                if status != expected[url]:
                    failures.append((url, status))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, f"{len(failures)} bad answers of {done[0]}: {failures[:5]}\n{served.output()[-3000:]}"
    assert done[0] >= 2000
    assert served.process.poll() is None and answers(served.url + "/")
    assert "Traceback" not in served.output(), served.output()


# ---- numbers too large for the database ------------------------------------------------------------

def number_params(route) -> list[tuple[str, str]]:
    """(where, name) of a route's parameters that take a number: int ones and version references."""
    found = [("path", p.name) for p in route.dependant.path_params
             if p.field_info.annotation is int or p.name == "version"]
    found += [("query", p.alias) for p in route.dependant.query_params
              if int in (p.field_info.annotation, *getattr(p.field_info.annotation, "__args__", ()))
              or p.name in ("from_", "to")]
    return found


def test_numbers_beyond_64_bits_in_any_url_are_a_clean_404_or_422(history, served):
    change_id = change_ids_of(history)[0]
    valid = {"name": NAMES[0], "version": "1", "change_id": str(change_id)}
    tried = []
    with httpx.Client(base_url=served.url, timeout=30) as http:
        for prefix, router in ROUTERS:
            for route in router.routes:
                if "GET" not in route.methods:
                    continue
                for where, param in number_params(route):
                    for huge in HUGE + ["v" + HUGE[0]] * (param in ("version", "from", "to")):
                        values = {**valid, param: huge} if where == "path" else valid
                        url = prefix + route.path.format(**values)
                        response = http.get(url, params={param: huge} if where == "query" else None)
                        tried.append(response.url.path)
                        # The API answers 404 or 422 in JSON; a page 404, or 400 for a bad query value
                        # (and a page number past the end shows the last page).
                        clean = (400, 404, 422) + ((200,) if param == "page" else ())
                        assert response.status_code in clean, (str(response.url)[:120], response.text[:300])
                        if response.status_code != 200:  # the answer names the number or the parameter
                            named = huge if response.status_code == 404 and len(huge) < 100 else param
                            assert named in response.text or "bad version" in response.text, str(response.url)[:120]
        # `to` alone (which a huge value showed was ignored): from the version before it.
        only_to = http.get(f"/api/targets/{NAMES[0]}/diff", params={"to": "v3"}).json()
        assert (only_to["from_version"], only_to["to_version"]) == (2, 3)
        first = http.get(f"/api/targets/{NAMES[0]}/diff", params={"to": 1})
        assert first.status_code == 404 and "no version before v1" in first.json()["detail"]
    assert len(tried) >= 40
    assert served.process.poll() is None


# ---- a capture whose charset is no text encoding ----------------------------------------------------

@pytest.mark.parametrize("charset", ["hex", "rot13", "base64", "idna"])
def test_source_view_of_a_capture_labelled_with_a_codec_that_is_not_text(server, workspace, charset):
    text = f"A page that claims charset={charset} but is plain text."
    server.set("/odd", Page(f"<html><body><article><p>{text}</p></article></body></html>",
                            headers={"Content-Type": f"text/html; charset={charset}"}))
    workspace.write_config(daemon_config(server, ["odd-post"], paths={"odd-post": "/odd"}))
    assert "odd-post: v1 first" in workspace.run("check").output
    ui = story.UI(workspace)
    try:
        source = ui.get("/targets/odd-post/versions/1/source")
        assert source.status_code == 200
        assert text in source.text
        assert ui.get("/targets/odd-post/versions/1").status_code == 200
    finally:
        ui.close()
