"""Content-addressed, zstd-compressed blobs: each distinct body or text stored once, by SHA-256.

Files are written to a temporary name, flushed to disk and renamed, so a crash leaves either the
whole file or none of it; a file is never rewritten once present.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import zstandard

LEVEL = 9


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SnapshotError(Exception):
    pass


class Snapshots:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._compressor = zstandard.ZstdCompressor(level=LEVEL)
        self._decompressor = zstandard.ZstdDecompressor()

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise SnapshotError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / f"{digest}.zst"

    def __contains__(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256(data)
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self._compressor.compress(data))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        try:
            data = self._decompressor.decompress(self.path(digest).read_bytes())
        except FileNotFoundError:
            raise SnapshotError(f"snapshot {digest[:12]}… is missing from {self.root}") from None
        except zstandard.ZstdError as exc:
            raise SnapshotError(f"snapshot {digest[:12]}… is damaged: {exc}") from None
        if sha256(data) != digest:
            raise SnapshotError(f"snapshot {digest[:12]}… is damaged: its content does not match its name")
        return data

    def get_text(self, digest: str) -> str:
        return self.get(digest).decode("utf-8")

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*.zst"))
