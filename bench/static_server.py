"""Serve a directory of static files with a private, foreground nginx.

nginx runs as a child process with its own generated config (pid file, error
log and temp paths all inside a state directory), on a free port on
127.0.0.1, with keep-alive enabled and access logging off. Static files get
ETag and Last-Modified headers, so conditional requests can return 304.
"""

from __future__ import annotations

import grp
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

NGINX_FALLBACK = "/usr/sbin/nginx"
STATUS_PATH = "/__nginx_status"


class ServerError(RuntimeError):
    pass


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return NGINX_FALLBACK if os.access(NGINX_FALLBACK, os.X_OK) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _user_directive() -> str:
    # A root master would hand requests to workers running as "nobody", who
    # may not be able to read a private temp dir; keep the current identity.
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


def nginx_features(nginx: str) -> tuple[tuple[int, ...], bool]:
    """(version, has stub_status) from `nginx -V`."""
    output = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    version = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
    return version, "http_stub_status_module" in output


def nginx_config(root: Path, state: Path, port: int, with_status: bool, types: dict[str, str] | None = None) -> str:
    temp = state / "temp"
    status_location = (f"        location = {STATUS_PATH} {{\n            stub_status;\n        }}"
                       if with_status else "")
    return f"""{_user_directive()}
daemon off;
master_process on;
worker_processes 1;
pid {state / 'nginx.pid'};
error_log {state / 'error.log'} warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path {temp / 'body'};
    proxy_temp_path {temp / 'proxy'};
    fastcgi_temp_path {temp / 'fastcgi'};
    uwsgi_temp_path {temp / 'uwsgi'};
    scgi_temp_path {temp / 'scgi'};

    types {{
        text/html html;
        text/css css;
        application/javascript js;
{"".join(f"        {mime} {ext};{chr(10)}" for ext, mime in (types or {}).items())}    }}
    default_type application/octet-stream;
    charset utf-8;

    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    etag on;
    if_modified_since exact;
    open_file_cache off;

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {root};
        location / {{
            try_files $uri =404;
        }}
{status_location}
    }}
}}
"""


class NginxServer:
    """Context manager: `with NginxServer(nginx, root, state) as server: ...`"""

    def __init__(self, nginx: str, root: Path, state: Path, types: dict[str, str] | None = None):
        """`types`: more MIME types by file extension, e.g. {"xml": "text/xml"}."""
        self.nginx, self.root, self.state = nginx, root.resolve(), state.resolve()
        self.types = types
        self.port = 0
        self.process: subprocess.Popen | None = None
        version, self.has_status = nginx_features(nginx)
        self.error_log_flag = version >= (1, 19, 5)     # `-e` appeared in 1.19.5

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "NginxServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, attempts: int = 3) -> None:
        for _ in range(attempts):
            self.port = free_port()
            if self._launch():
                return
        raise ServerError(f"nginx did not start:\n{self._error_log()}")

    def _launch(self) -> bool:
        (self.state / "temp").mkdir(parents=True, exist_ok=True)
        config = self.state / "nginx.conf"
        config.write_text(nginx_config(self.root, self.state, self.port, self.has_status, self.types))
        command = [self.nginx, "-p", f"{self.state}/", "-c", str(config)]
        if self.error_log_flag:
            command += ["-e", str(self.state / "error.log")]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False            # e.g. the port was taken meanwhile
            if _accepts(self.port):
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)   # graceful shutdown
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def requests_served(self) -> int | None:
        """nginx's total request counter (None without stub_status)."""
        if not self.has_status:
            return None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", STATUS_PATH)
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        # "Active connections: 1\nserver accepts handled requests\n 5 5 9\n..."
        return int(text.splitlines()[2].split()[2])

    def _error_log(self) -> str:
        log = self.state / "error.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else "(no error log)"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def etags(port: int, paths: list[str]) -> dict[str, str | None]:
    """The current ETag of each path, over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        result = {}
        for path in paths:
            conn.request("HEAD", path)
            response = conn.getresponse()
            response.read()
            result[path] = response.getheader("ETag")
        return result
    finally:
        conn.close()


def check_conditional_get(port: int, path: str) -> None:
    """Raise ServerError unless `path` is served with 200 and revalidates to 304."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        etag = response.getheader("ETag")
        modified = response.getheader("Last-Modified")
        if response.status != 200 or not etag or not modified:
            raise ServerError(f"GET {path}: status {response.status}, "
                              f"ETag {etag!r}, Last-Modified {modified!r}")
        conn.request("GET", path, headers={"If-None-Match": etag})
        response = conn.getresponse()
        response.read()
        if response.status != 304:
            raise ServerError(f"conditional GET {path}: status {response.status}, expected 304")
    finally:
        conn.close()
