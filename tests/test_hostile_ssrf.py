"""A watched site must not be able to make us fetch internal addresses (SSRF).

Runs inside a network namespace this test makes: its loopback interface also holds a "public"
address (93.184.216.34) and private, link-local and CGNAT ones, and its /etc/hosts names them, so
every address class is real and reachable, yet no packet can leave the namespace. One server in
it answers on all of them and records every request by the address it arrived at. The monitor
runs in the namespace too, as the real CLI.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2 to make a network namespace")

PUBLIC = "93.184.216.34"
ADDRESSES = [PUBLIC, "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1"]
HOSTS = {"blog.example": PUBLIC, "internal.example": "127.0.0.1", "intranet.example": "10.0.0.1"}

SERVER = r'''
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
import socket
LOG = sys.argv[1]
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        here = self.connection.getsockname()[0]
        with lock, open(LOG, "a") as f:
            f.write(json.dumps([here, self.path]) + "\n")
        if self.path.startswith("/go?to="):
            from urllib.parse import unquote
            self.send_response(302); self.send_header("Location", unquote(self.path[7:])); self.send_header("Content-Length", "0")
            self.end_headers(); return
        if self.path == "/feed.xml":
            items = "".join(f"<item><title>p</title><link>{u}</link></item>" for u in
                            ("http://blog.example/go?to=http://internal.example/admin", "http://blog.example/post"))
            body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>b</title>{items}</channel></rss>'.encode()
            ctype = "application/rss+xml"
        elif self.path == "/admin":
            body = b"<html><body><article><h1>Admin</h1><p>SECRET internal admin page at " + here.encode() + b".</p></article></body></html>"
            ctype = "text/html"
        else:
            body = b"<html><body><article><h1>Post</h1><p>An ordinary public post of the blog.</p></article></body></html>"
            ctype = "text/html"
        self.send_response(200); self.send_header("Content-Type", ctype); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
class S(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
S(("::", 80), H).serve_forever()
'''

# (redirect target, what the refusal names) — each reached from a public page. A host spelled as
# a number in another form than a.b.c.d is refused before any lookup, whatever it stands for.
NONCANONICAL = "not a canonical IPv4 address"
REFUSED = {
    "loopback": ("http://127.0.0.1/admin", "loopback"),
    "loopback, short form": ("http://127.1/admin", NONCANONICAL),
    "loopback, hex": ("http://0x7f000001/admin", "loopback"),
    "loopback by name": ("http://internal.example/admin", "loopback"),
    "loopback IPv6": ("http://[::1]/admin", "loopback"),
    "IPv4-mapped loopback": ("http://[::ffff:127.0.0.1]/admin", "loopback"),
    "private 10/8": ("http://10.0.0.1/admin", "private"),
    "private by name": ("http://intranet.example/admin", "private"),
    "private 172.16/12": ("http://172.16.0.1/admin", "private"),
    "private 192.168/16": ("http://192.168.0.1/admin", "private"),
    "link-local metadata": ("http://169.254.169.254/admin", "link-local"),
    "link-local, decimal": ("http://2852039166/admin", NONCANONICAL),
    "CGNAT": ("http://100.64.0.1/admin", "CGNAT"),
    "unspecified": ("http://0.0.0.0/admin", "unspecified"),
    "multicast": ("http://224.0.0.1/admin", "multicast"),
    "reserved": ("http://240.0.0.1/admin", "reserved"),
}


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture(scope="module")
def netns(tmp_path_factory):
    name = f"monssrf{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("ssrf")
    _sh("ip", "netns", "add", name)
    etc = f"/etc/netns/{name}"
    try:
        os.makedirs(etc, exist_ok=True)
        with open(f"{etc}/hosts", "w") as hosts:
            hosts.write("127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{a} {h}\n" for h, a in HOSTS.items()))
        _sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        for address in ADDRESSES:
            _sh("ip", "netns", "exec", name, "ip", "addr", "add", f"{address}/32", "dev", "lo")
        log = folder / "requests.jsonl"
        log.touch()
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", SERVER, str(log)])
        deadline = time.monotonic() + 10
        while subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c",
                              f"import socket; socket.create_connection(('{PUBLIC}', 80), 1)"],
                             capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "the namespace's server did not start"
            time.sleep(0.1)
        yield {"name": name, "folder": folder, "log": log}
        server.kill()
        server.wait()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


def _monitor(netns, config_text: str, *args: str) -> subprocess.CompletedProcess:
    config = netns["folder"] / f"{uuid.uuid4().hex[:6]}.toml"
    config.write_text(config_text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(["ip", "netns", "exec", netns["name"], sys.executable, "-m", "monitor", *args[:1],
                           "--config", str(config), *args[1:]], capture_output=True, text=True, env=env, timeout=120,
                          cwd=netns["folder"])


def _requests(netns) -> list[tuple[str, str]]:
    return [tuple(json.loads(line)) for line in netns["log"].read_text().splitlines()]


HEAD = """
[monitor]
database = "sqlite:///{db}"
snapshots = "{db}-snapshots"
retries = 0
calibrate = false
timeout = "5s"
"""


def _config(netns, targets: dict[str, str], extra: str = "") -> str:
    db = netns["folder"] / f"{uuid.uuid4().hex[:6]}.db"
    text = HEAD.format(db=db) + extra
    for name, url in targets.items():
        text += f'\n[[targets]]\nname = "{name}"\nurl = "{url}"\n'
    return text


def _targets(netns, text: str) -> dict:
    _monitor(netns, text, "check")
    listing = _monitor(netns, text, "targets", "--json")
    assert listing.returncode == 0, listing.stderr
    return {t["name"]: t for t in json.loads(listing.stdout)}


def test_redirects_from_a_public_page_never_reach_an_internal_address(netns):
    names = {case: f"r{i:02d}" for i, case in enumerate(REFUSED)}
    targets = {names[case]: f"http://{PUBLIC}/go?to={url}" for case, (url, _) in REFUSED.items()}
    targets["public"] = f"http://{PUBLIC}/post"
    before = len(_requests(netns))
    result = _targets(netns, _config(netns, targets))

    assert result["public"]["status"] == "ok"
    for case, (url, kind) in REFUSED.items():
        target = result[names[case]]
        assert target["status"] == "error" and target["versions"] == 0, (case, target)
        expected = kind if kind == NONCANONICAL else f"{kind} address"
        assert "refused" in target["last_error"] and expected in target["last_error"], (case, target["last_error"])
    # No request ever reached the admin page, on any address.
    assert not [r for r in _requests(netns)[before:] if r[1] == "/admin"]


def test_the_operators_own_urls_are_trusted_as_written(netns):
    """A page on an intranet or loopback address, listed by hand, is fetched; its redirects may
    stay in its own class, but not reach another one."""
    targets = {"intranet": "http://10.0.0.1/admin", "local": "http://127.0.0.1/admin",
               "intranet-hop": "http://10.0.0.1/go?to=http://intranet.example/admin",
               "intranet-to-metadata": "http://10.0.0.1/go?to=http://169.254.169.254/admin"}
    result = _targets(netns, _config(netns, targets))
    assert result["intranet"]["status"] == result["local"]["status"] == result["intranet-hop"]["status"] == "ok"
    assert result["intranet-to-metadata"]["status"] == "error"
    assert "link-local address" in result["intranet-to-metadata"]["last_error"]


def test_allow_private_and_allow_networks_open_the_door_they_name(netns):
    targets = {"allowed": f"http://{PUBLIC}/go?to=http://10.0.0.1/admin",
               "in-network": f"http://{PUBLIC}/go?to=http://192.168.0.1/admin",
               "outside-network": f"http://{PUBLIC}/go?to=http://172.16.0.1/admin"}
    text = _config(netns, targets, 'allow_networks = ["192.168.0.0/24"]\n')
    text = text.replace('name = "allowed"\n', 'name = "allowed"\nallow_private = true\n')
    result = _targets(netns, text)
    assert result["allowed"]["status"] == "ok" and result["in-network"]["status"] == "ok"
    assert result["outside-network"]["status"] == "error"
    assert "private address" in result["outside-network"]["last_error"]
    shown = _monitor(netns, text, "show", "allowed", "--json")
    assert "SECRET internal admin page at" in shown.stdout and "10.0.0.1." in shown.stdout


def test_a_feed_cannot_make_us_fetch_internal_pages(netns):
    """A site's feed on a public host lists a post that redirects to an internal host: the post's
    check fails naming the refusal, the admin page is never requested, the real post is watched."""
    db = netns["folder"] / "site.db"
    text = HEAD.format(db=db) + '\n[[sites]]\nname = "blog"\nfeeds = ["http://blog.example/feed.xml"]\nrobots = false\n'
    before = len(_requests(netns))
    out = _monitor(netns, text, "check")
    assert out.returncode == 0, out.stdout + out.stderr
    listing = {t["name"]: t for t in json.loads(_monitor(netns, text, "targets", "--json").stdout)}
    statuses = sorted((t["status"], t["last_error"] or "") for t in listing.values())
    assert [s for s, _ in statuses] == ["error", "ok"], statuses
    assert "loopback address" in statuses[0][1]
    assert not [r for r in _requests(netns)[before:] if r[1] == "/admin"]
