"""A time-stamping authority (RFC 3161) on 127.0.0.1 for the tests: OpenSSL's own `openssl ts
-reply` signs each query with a throwaway TSA certificate issued by a throwaway root CA, both
made here with the `openssl` command. `mode` makes it misbehave: "500" (a server error) or
"garbage" (200 with a body that is no timestamp reply)."""
from __future__ import annotations

import subprocess
import tempfile
import threading
import textwrap
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from conftest import LoopbackServer, free_port

EXTENSIONS = """
[tsa]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, text=True, timeout=60)


def make_ca(folder: Path, name: str) -> None:
    """A self-signed root CA: folder/ca.pem, folder/ca.key."""
    openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")


class TimestampAuthority(LoopbackServer):
    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.ca = folder, folder / "ca.pem"
        make_ca(folder, "Test TSA Root")
        (folder / "ext.cnf").write_text(EXTENSIONS)
        openssl(folder, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
                "-subj", "/CN=Test TSA")
        openssl(folder, "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "tsa.pem", "-days", "2", "-extfile", "ext.cnf", "-extensions", "tsa")
        (folder / "chain.pem").write_text((folder / "tsa.pem").read_text() + self.ca.read_text())
        (folder / "serial").write_text("01\n")
        (folder / "tsa.cnf").write_text(textwrap.dedent(f"""
            [tsa]
            default_tsa = tsa_config
            [tsa_config]
            serial = {folder}/serial
            crypto_device = builtin
            signer_cert = {folder}/tsa.pem
            certs = {folder}/ca.pem
            signer_key = {folder}/tsa.key
            signer_digest = sha256
            default_policy = 1.2.3.4.1
            other_policies = 1.2.3.4.2
            digests = sha256, sha384, sha512
            accuracy = secs:1
            ordering = yes
            tsa_name = yes
            ess_cert_id_chain = no
            ess_cert_id_alg = sha256
            """))
        self.mode = "ok"
        self.queries: list[bytes] = []
        lock = threading.Lock()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                query = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 65536))
                tsa.queries.append(query)
                if tsa.mode == "500":
                    return self.answer(500, b"internal error", "text/plain")
                if tsa.mode == "garbage":
                    return self.answer(200, b"<html><body>Timestamps are free today!</body></html>",
                                       "application/timestamp-reply")
                with lock, tempfile.TemporaryDirectory() as work:
                    (Path(work) / "query.tsq").write_bytes(query)
                    openssl(Path(work), "ts", "-reply", "-config", str(folder / "tsa.cnf"), "-queryfile", "query.tsq",
                            "-out", "reply.tsr")
                    reply = (Path(work) / "reply.tsr").read_bytes()
                self.answer(200, reply, "application/timestamp-reply")

            def answer(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)

    def verify(self, head: str, token: Path) -> subprocess.CompletedProcess:
        """`openssl ts -verify` of a token over the digest `head`, against this TSA's root CA."""
        return subprocess.run(["openssl", "ts", "-verify", "-digest", head, "-in", str(token), "-CAfile", str(self.ca)],
                              capture_output=True, text=True, timeout=60)


def fingerprint(certificate: Path) -> str:
    """A certificate's SHA-256 fingerprint as authsign lists trusted roots: lowercase hex."""
    out = openssl(certificate.parent, "x509", "-in", str(certificate), "-noout", "-fingerprint", "-sha256").stdout
    return out.split("=", 1)[1].strip().replace(":", "").lower()


class SigningServer:
    """Webrecorder's signing server (the `authsign` package, run from its own virtualenv, which
    tests/run.sh makes: tests/.cache/authsign-venv) on 127.0.0.1, as a WACZ signer runs it, but
    with a domain certificate for `monitor.test` issued by a throwaway root CA made here instead
    of one from Let's Encrypt, and the loopback TSA `tsa` for its RFC 3161 timestamps. Its
    /verify trusts exactly those two roots."""

    VENV = Path(__file__).resolve().parent / ".cache" / "authsign-venv"
    DOMAIN = "monitor.test"
    TOKEN = "signing-token-for-tests"

    def __init__(self, folder: Path, tsa: TimestampAuthority):
        import os
        import time

        python = self.VENV / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"{python} is missing: tests/run.sh installs authsign there")
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / "data"
        data.mkdir(exist_ok=True)
        make_ca(folder, "Test Domain Root")
        openssl(folder, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "domain.key")
        openssl(folder, "pkcs8", "-topk8", "-in", "domain.key", "-out", str(data / "private-key.pem"),
                "-passout", "pass:passphrase")  # authsign's own passphrase for its key file
        openssl(folder, "req", "-new", "-key", "domain.key", "-out", "domain.csr", "-subj", f"/CN={self.DOMAIN}")
        (folder / "ext.cnf").write_text(f"[domain]\nsubjectAltName = DNS:{self.DOMAIN}\n")
        openssl(folder, "x509", "-req", "-in", "domain.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "domain.pem", "-days", "2", "-extfile", "ext.cnf", "-extensions", "domain")
        (data / "cert.pem").write_text((folder / "domain.pem").read_text() + (folder / "ca.pem").read_text())
        (folder / "roots.yaml").write_text(f"domain_cert_roots:\n  - {fingerprint(folder / 'ca.pem')}\n"
                                           f"timestamp_cert_roots:\n  - {fingerprint(tsa.ca)}\n")
        (folder / "config.yaml").write_text(textwrap.dedent(f"""
            signing:
              domain: {self.DOMAIN}
              email: archivist@{self.DOMAIN}
              port: 1
              output: {data}
              auth_token: {self.TOKEN}
              timestamping:
                - url: {tsa.url("/tsr")}
            trusted_roots: {folder / "roots.yaml"}
            """))
        self.port = free_port()
        self.log = open(folder / "authsign.log", "wb")
        env = {**os.environ, "CONFIG": str(folder / "config.yaml"), "NO_RENEW": "1"}
        self.process = subprocess.Popen([str(python), "-m", "uvicorn", "authsign.main:app", "--host", "127.0.0.1",
                                         "--port", str(self.port)], cwd=folder, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"authsign exited: {(folder / 'authsign.log').read_text()[-2000:]}")
            if b"Application startup complete" in (folder / "authsign.log").read_bytes():
                return
            time.sleep(0.1)
        self.close()
        raise RuntimeError("authsign did not start within 60 s")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
