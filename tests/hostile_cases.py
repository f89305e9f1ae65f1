"""Hostile HTTP answers, each a raw byte stream a loopback server sends for one path.

Used by tests/test_hostile_net.py (one `monitor check` over every case beside healthy targets)
and by bench/hostile_pass.py. Each case: (writer, expected) where the writer gets the socket and
`expected` is the text the failed check's error must contain, or ("ok", text) for a page that
must be read correctly despite its oddity.
"""
from __future__ import annotations

import gzip
import socket
import socketserver
import threading
import time
import zlib
from functools import lru_cache

import brotli
import zstandard

BOMB_SIZE = 400_000_000  # decoded bytes of each compression bomb: far past any cap
PAGE = b"<html><head><title>Post</title></head><body><article><h1>Post</h1><p>The original words of the post.</p></article></body></html>"


# ---- compression ---------------------------------------------------------------------------

def _zeros(chunk=1 << 20, size=BOMB_SIZE):
    block = b"\0" * chunk
    for _ in range(size // chunk):
        yield block


@lru_cache(maxsize=None)
def bomb(encoding: str) -> bytes:
    """BOMB_SIZE zero bytes, compressed with one content coding (made once per run)."""
    if encoding in ("gzip", "x-gzip"):  # gzip members, each 8 MB of zeros, one after another (RFC 1952)
        return gzip.compress(b"\0" * (8 << 20), 9) * (BOMB_SIZE // (8 << 20))
    if encoding in ("deflate", "deflate-raw"):  # one stream: deflate's ~1000:1 is the bomb
        obj = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS if encoding == "deflate" else -zlib.MAX_WBITS)
        return b"".join(obj.compress(b) for b in _zeros(size=64 << 20)) + obj.flush()
    elif encoding == "br":
        c = brotli.Compressor(quality=1)
        return b"".join(c.process(b) for b in _zeros()) + c.finish()
    elif encoding == "zstd":
        c = zstandard.ZstdCompressor(level=1).compressobj()
        return b"".join(c.compress(b) for b in _zeros()) + c.flush()


def encode(data: bytes, encoding: str) -> bytes:
    return {"gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress,
            "deflate-raw": lambda d: zlib.compress(d)[2:-4], "br": brotli.compress,
            "zstd": lambda d: zstandard.ZstdCompressor().compress(d)}[encoding](data)


def stacked(data: bytes, encodings: list[str]) -> bytes:
    for name in encodings:  # applied in the order the header lists them
        data = encode(data, name)
    return data


# ---- raw answers ---------------------------------------------------------------------------

def head(status="200 OK", headers=(), length=None, content_type="text/html; charset=utf-8") -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += list(headers)
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(body: bytes, status="200 OK", headers=(), content_type="text/html; charset=utf-8"):
    def write(sock, path):
        sock.sendall(head(status, headers, len(body), content_type) + body)
    return write


def compressed(body_of, encoding_header: str):
    def write(sock, path):
        body = body_of()
        sock.sendall(head(headers=[f"Content-Encoding: {encoding_header}"], length=len(body)) + body)
    return write


def raw(data: bytes):
    def write(sock, path):
        sock.sendall(data)
    return write


def endless(chunked: bool):
    def write(sock, path):
        sock.sendall(head(headers=["Transfer-Encoding: chunked"] if chunked else []))
        piece = b"<p>" + b"x" * 65536 + b"</p>"
        for _ in range(2000):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    return write


def drip(first: bytes, step: bytes, pause: float, count: int = 40):
    def write(sock, path):
        sock.sendall(first)
        for _ in range(count):
            time.sleep(pause)
            sock.sendall(step)
    return write


def silent(seconds: float):
    def write(sock, path):
        time.sleep(seconds)
    return write


def redirect(location: str, status="302 Found"):
    return answer(b"", status=status, headers=[f"Location: {location}"])


def redirect_loop(sock, path):
    hop = int(path.rpartition("/")[2]) if path.rpartition("/")[2].isdigit() else 0
    sock.sendall(head("302 Found", [f"Location: {path.rsplit('/', 1)[0] if hop else path}/{hop + 1}"], 0))


def deep(tag: str, depth: int) -> bytes:
    return (b"<html><body><article><h1>Deep</h1><p>Words before the nesting.</p>" + f"<{tag}>".encode() * depth
            + b"deep text" + f"</{tag}>".encode() * depth + b"</article></body></html>")


ENCODINGS = ["gzip", "x-gzip", "deflate", "br", "zstd"]
STACKS = [["gzip", "gzip"], ["gzip", "br"], ["br", "gzip"], ["br", "br"], ["zstd", "zstd"], ["gzip", "zstd"],
          ["zstd", "br", "gzip"], ["deflate", "gzip"], ["gzip", "gzip", "gzip"]]
TEXT = "The original words of the post."
TOO_LARGE = "body too large"


def cases() -> dict[str, tuple]:
    c: dict[str, tuple] = {}
    # Compression bombs: every coding alone, stacked, and raw deflate as some servers send it.
    for name in ENCODINGS + ["deflate-raw"]:
        header = "deflate" if name == "deflate-raw" else name
        c[f"bomb {name}"] = (compressed(lambda n=name: bomb(n), header), TOO_LARGE)
    for stack in STACKS:
        c["bomb " + ", ".join(stack)] = (
            compressed(lambda s=stack: stacked(bomb(s[0]), s[1:]), ", ".join(stack)), TOO_LARGE)
    c["bomb gzip declared as text/plain"] = (lambda sock, path: sock.sendall(
        head(headers=["Content-Encoding: gzip"], length=len(bomb("gzip")), content_type="text/plain") + bomb("gzip")),
        TOO_LARGE)
    # Good pages in every coding and stacking are read.
    for name in ENCODINGS + ["deflate-raw"]:
        header = "deflate" if name == "deflate-raw" else name
        c[f"page in {name}"] = (compressed(lambda n=name: encode(PAGE, n), header), ("ok", TEXT))
    for stack in STACKS[:4]:
        c["page in " + ", ".join(stack)] = (compressed(lambda s=stack: stacked(PAGE, s), ", ".join(stack)), ("ok", TEXT))
    # Broken, truncated and unknown codings.
    for name in ENCODINGS:
        c[f"garbage labelled {name}"] = (compressed(lambda: b"this is not compressed at all " * 40, name),
                                         "bad " if name != "br" else "bad br data")
        c[f"truncated {name}"] = (compressed(lambda n=name: encode(PAGE * 50, n)[:-40], name), "truncated")
    for label in ("compress", "x-bogus", "gzip, bogus", "lzma", "exi", "pack200-gzip"):
        c[f"unknown encoding {label}"] = (compressed(lambda: PAGE, label), "unsupported content encoding")
    # Size.
    c["endless body"] = (endless(chunked=False), TOO_LARGE)
    c["endless chunked body"] = (endless(chunked=True), TOO_LARGE)
    c["declared 50 MB"] = (raw(head(length=50_000_000) + b"<p>x</p>"), "50,000,000 bytes declared")
    c["declared 2^70 bytes"] = (raw(head(length=2 ** 70) + b"<p>x</p>"), "malformed HTTP response")
    c["many small elements"] = (answer(b"<html><body><article><h1>List</h1>" + b"<p>x</p>" * 120_000
                                       + b"</article></body></html>"), "more than 60,000 elements")
    c["30,000 small elements"] = (answer(b"<html><body><article><h1>List</h1>" + b"<p>x</p>" * 30_000
                                         + b"</article></body></html>"), ("ok", "List"))
    # Lying lengths and broken framing.
    c["content-length longer than body"] = (raw(head(length=5000) + PAGE), "network error")
    c["content-length shorter than body"] = (raw(head(length=20) + PAGE), "malformed HTTP response")
    c["two content-lengths"] = (raw(head(headers=["Content-Length: 10"], length=len(PAGE)) + PAGE), "malformed HTTP response")
    c["negative content-length"] = (raw(head(headers=["Content-Length: -5"]) + PAGE), "malformed HTTP response")
    c["bad chunk size"] = (raw(head(headers=["Transfer-Encoding: chunked"]) + b"zz\r\nhello\r\n0\r\n\r\n"), "")
    c["chunked body cut off"] = (raw(head(headers=["Transfer-Encoding: chunked"]) + b"400\r\n" + PAGE), "network error")
    # Time.
    c["slow drip body"] = (drip(head(length=100_000) + b"<p>", b"<p>", 0.3), "timed out")
    c["slow drip headers"] = (drip(b"HTTP/1.1 200 OK\r\n", b"X-Slow: 1\r\n", 0.3), "timed out")
    c["accepts and says nothing"] = (silent(8), "timed out")
    c["closes at once"] = (raw(b""), "network error")
    c["closes mid-headers"] = (raw(b"HTTP/1.1 200 OK\r\nContent-Ty"), "network error")
    # Status lines and headers.
    c["garbage status line"] = (raw(b"HELLO THERE\r\n\r\n" + PAGE), "malformed HTTP response")
    c["HTTP/0.9 answer"] = (raw(PAGE), "malformed HTTP response")
    c["status 999"] = (answer(PAGE, status="999 Odd"), "HTTP 999")
    c["status 600"] = (answer(PAGE, status="600 Odd"), "HTTP 600")
    c["status 1000"] = (answer(PAGE, status="1000 Odd"), "malformed HTTP response")
    c["status 204 no content"] = (answer(b"", status="204 No Content"), "no text content")
    c["status 404"] = (answer(b"<h1>Not here</h1>", status="404 Not Found"), "HTTP 404")
    c["status 500 forever"] = (answer(b"<h1>Oops</h1>", status="500 Internal Server Error"), "HTTP 500")
    c["header line of 100 KB"] = (raw(head(headers=["X-Big: " + "a" * 100_000], length=len(PAGE)) + PAGE),
                                  "malformed HTTP response")
    c["10000 headers"] = (raw(head(headers=[f"X-H{i}: v" for i in range(10_000)], length=len(PAGE)) + PAGE),
                          "malformed HTTP response")
    c["header without colon"] = (raw(head(headers=["NoColonHere"], length=len(PAGE)) + PAGE), "malformed HTTP response")
    c["NUL in header"] = (raw(head(headers=["X-A: b\0c"], length=len(PAGE)) + PAGE), "malformed HTTP response")
    c["no content-type"] = (answer(PAGE, content_type=None), ("ok", TEXT))
    c["content-type garbage"] = (answer(PAGE, content_type=";;;==="), ("ok", TEXT))
    # Types that are not web pages, labelled honestly or not.
    for ctype in ("image/png", "application/pdf", "application/octet-stream", "video/mp4", "application/zip",
                  "font/woff2", "application/javascript"):
        c[f"type {ctype}"] = (answer(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, content_type=ctype),
                              f"not a web page: content-type {ctype}")
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"stream\nBT /F1 12 Tf (words) Tj ET\n" * 200
    c["PDF served as text/html"] = (answer(pdf), "a PDF document")
    c["PNG served as text/html"] = (answer(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8), "binary content")
    c["zip served as text/html"] = (answer(b"PK\x03\x04" + bytes(range(256)) * 8), "binary content")
    c["gzip body without content-encoding"] = (answer(gzip.compress(PAGE * 20)), "binary content")
    c["ELF served as text/html"] = (answer(b"\x7fELF\x02\x01\x01" + bytes(64) + b"<p>x</p>" * 100), "binary content")
    c["NUL bytes in html"] = (answer(b"<p>a\0b</p>" * 200), "binary content")
    c["random bytes as html"] = (answer(bytes((i * 7919) % 256 for i in range(20_000))), "binary content")
    c["zstd frame as html"] = (answer(zstandard.ZstdCompressor().compress(PAGE * 20)), "binary content")
    # Charset labels a browser does not know (or that are codecs of bytes, not text) are skipped.
    for label in ("hex", "rot13", "idna", "base64", "uu", "zlib_codec", "bz2", "quopri", "punycode", "utf-7",
                  "x-user-defined", "replacement", "utf-8-sig-bogus", "../../etc/passwd"):
        c[f"charset={label}"] = (answer("<p>Café “quoted”</p><p>The original words of the post.</p>".encode(),
                                        content_type=f"text/html; charset={label}"), ("ok", TEXT))
        c[f"meta charset={label}"] = (answer(f'<meta charset="{label}"><p>Café</p><p>{TEXT}</p>'.encode(),
                                             content_type="text/html"), ("ok", TEXT))
    c["charset=utf-16 without BOM"] = (answer(("<p>" + TEXT + "</p>").encode("utf-16-le"),
                                              content_type="text/html; charset=utf-16"), ("ok", TEXT))
    c["invalid utf-8 declared utf-8"] = (answer(b"<p>bad \xff\xfe bytes</p><p>" + TEXT.encode() + b"</p>"), ("ok", TEXT))
    # Markup built to hurt a parser.
    for tag, depth in (("div", 50_000), ("b", 100_000), ("table", 20_000), ("span", 70_000), ("blockquote", 30_000)):
        c[f"{tag} nested {depth} deep"] = (answer(deep(tag, depth)), ("ok", "Words before the nesting."))
    c["billion laughs in xhtml"] = (answer(b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY a "aaaaaaaaaa">'
                                           + b"".join(b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(9))
                                           + b']><html xmlns="http://www.w3.org/1999/xhtml"><body><article><h1>Post</h1><p>&j;</p><p>'
                                           + TEXT.encode() + b"</p></article></body></html>", content_type="application/xhtml+xml"),
                                     ("ok", TEXT))
    c["external entity in xhtml"] = (answer(b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                            b'<html xmlns="http://www.w3.org/1999/xhtml"><body><article><p>&x;</p><p>'
                                            + TEXT.encode() + b"</p></article></body></html>", content_type="application/xhtml+xml"),
                                     ("ok", TEXT))
    c["unclosed everything"] = (answer(b"<html><body><article><p>" + TEXT.encode() + b"<div><span><b><i>" * 5000), ("ok", TEXT))
    c["a million attributes"] = (answer(b"<html><body><article><p " + b"a=1 " * 200_000 + b">" + TEXT.encode()
                                        + b"</p></article></body></html>"), ("ok", TEXT))
    # Redirects: loops, and schemes that are not the web.
    c["endless redirects"] = (redirect_loop, "too many redirects")
    for scheme in ("data:text/html,<p>hi</p>", "javascript:alert(1)", "file:///etc/passwd", "ftp://127.0.0.1/x",
                   "gopher://127.0.0.1:70/x", "mailto:a@example.org", "about:blank", "ws://127.0.0.1/x"):
        c[f"redirect to {scheme.split(':')[0]}:"] = (redirect(scheme), "only http and https")
    c["redirect without location"] = (answer(b"<p>moved</p>", status="302 Found"), "HTTP 302")
    c["redirect to port 99999"] = (redirect("http://127.0.0.1:99999/x"), "")
    c["redirect to port 0"] = (redirect("http://127.0.0.1:0/x"), "network error")
    c["redirect to a malformed URL"] = (redirect("http://[::1/x"), "")
    c["redirect to an empty host"] = (redirect("http:///x"), "")
    return c


# Runs `python -m monitor ARGS` and, as it exits, writes its own peak RSS (VmHWM) to a file. The
# OS's rusage for a child would not do: a child started by fork/vfork inherits its parent's peak.
_MEASURED = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def peak():
    status = open("/proc/self/status").read()
    open(out, "w").write(status.split("VmHWM:")[1].split()[0])
atexit.register(peak)
sys.argv[0] = "monitor"
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""


def run_measured(args: list[str], env: dict, cwd) -> tuple[str, float]:
    """(output, peak RSS in MB) of one `monitor` command run as its own process."""
    import subprocess
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".kb") as peak:
        proc = subprocess.run([sys.executable, "-c", _MEASURED, peak.name, *args], env=env, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        kb = open(peak.name).read().strip()
    return proc.stdout, int(kb) / 1024 if kb else float("inf")


class RawServer:
    """A loopback TCP server that answers each request for /case/<name> with that case's bytes."""

    def __init__(self, table: dict[str, tuple], host: str = "127.0.0.1"):
        self.table = table
        self.requests: list[str] = []
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock: socket.socket = self.request
                sock.settimeout(10)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        got = sock.recv(4096)
                        if not got:
                            return
                        data += got
                    path = data.split(b" ", 2)[1].decode("latin-1")
                    server.requests.append(path)
                    name = path.split("/case/", 1)[-1].split("/")[0]
                    from urllib.parse import unquote
                    writer = server.table.get(unquote(name), (answer(b"<h1>no such case</h1>", "404 Not Found"),))[0]
                    writer(sock, path)
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256  # a pass opens many connections at once
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self.httpd = Server((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        from urllib.parse import quote
        return f"http://127.0.0.1:{self.port}/case/{quote(name, safe='')}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- one pass over the cases ---------------------------------------------------------------

PASS_CONFIG = """
[monitor]
retries = 0
calibrate = false
timeout = "5s"
max_bytes = 1000000
max_redirects = 5
concurrency = 16
per_host = 16
"""
HEALTHY = [f"healthy{i}" for i in range(8)]


def names_of(table: dict) -> dict[str, str]:
    """Each case's target name."""
    return {case: f"case{i:03d}" for i, case in enumerate(table)}


def run_pass(table: dict, folder) -> dict:
    """One real `monitor check` over every case of `table` (each a target on a raw loopback server)
    plus HEALTHY targets on another server: the targets by name afterwards, the output, the pass's
    peak RSS in MB and its wall time."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT, Page, PageServer

    for encoding in ENCODINGS + ["deflate-raw"]:
        bomb(encoding)  # made before the pass, not while the server answers
    raw, pages = RawServer(table), PageServer()
    names = names_of(table)
    text = PASS_CONFIG + "".join(f'\n[[targets]]\nname = "{names[c]}"\nurl = "{raw.url(c)}"\n' for c in table)
    for name in HEALTHY:
        pages.set(f"/{name}", Page(f"<html><body><article><h1>{name}</h1><p>Healthy words of {name}.</p></article>"
                                   "</body></html>"))
        text += f'\n[[targets]]\nname = "{name}"\nurl = "{pages.url("/" + name)}"\n'
    config = Path(folder) / "targets.toml"
    config.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        started = time.perf_counter()
        output, rss_mb = run_measured(["check", "--config", str(config)], env, folder)
        wall = time.perf_counter() - started
        listing = subprocess.run([sys.executable, "-m", "monitor", "targets", "--json", "--config", str(config)],
                                 capture_output=True, text=True, env=env, check=True).stdout
    finally:
        raw.close()
        pages.close()
    return {"targets": {t["name"]: t for t in json.loads(listing)}, "output": output, "rss_mb": rss_mb,
            "wall_s": wall, "config": config}

