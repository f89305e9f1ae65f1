"""TLS is verified: a page served with a certificate no trusted authority signed is a failed
check that says so (and is not retried); with the authority trusted, the same page is read."""
from __future__ import annotations

import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

PAGE = b"<html><body><article><h1>Post</h1><p>Served over TLS from loopback.</p></article></body></html>"


@pytest.fixture
def tls_server(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

    class Server(ThreadingHTTPServer):
        def get_request(self):
            requests.append("connection")  # each TCP connection accepted (before the handshake)
            return super().get_request()

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield f"https://127.0.0.1:{httpd.server_address[1]}/post", ca_file, requests
    httpd.shutdown()
    httpd.server_close()


CONFIG = """
[monitor]
retries = 2
retry_backoff = "0.1s"
calibrate = false
timeout = "5s"

[[targets]]
name = "post"
url = "{url}"
"""


def test_an_untrusted_certificate_is_a_clear_failed_check(tls_server, workspace):
    url, _, requests = tls_server
    workspace.write_config(CONFIG.format(url=url))
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    out = workspace.subprocess("check", env=env).stdout
    assert "post: ERROR TLS certificate not trusted" in out and "127.0.0.1" in out, out
    # One connection, no request: the handshake failed, and it was not retried (retries = 2),
    # since a certificate that is not trusted does not become trusted a second later.
    assert requests == ["connection"]


def test_a_trusted_certificate_is_read(tls_server, workspace):
    url, ca_file, requests = tls_server
    workspace.write_config(CONFIG.format(url=url))
    env = dict(os.environ, SSL_CERT_FILE=str(ca_file))
    result = workspace.subprocess("check", env=env)
    assert "post: v1 first" in result.stdout, result.stdout + result.stderr
    assert requests == ["connection", "/post"]
