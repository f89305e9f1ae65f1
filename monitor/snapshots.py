"""Content-addressed, zstd-compressed blobs: each distinct body or text stored once, by SHA-256.

A blob may be stored as a delta: compressed with another stored blob (its base) as a zstd
raw-content dictionary. An extracted text is stored against the capture it came from, and a new
capture of a page against an earlier capture of the same page, so an edit of one sentence costs
a few hundred bytes rather than a whole page. A delta's base is always a plain blob (or, for a
text, a capture), so reading never follows a chain longer than two.

Files are written to a temporary name, flushed to disk and renamed, so a crash leaves either the
whole file or none of it; a file is never rewritten once present. Every read is checked against
the SHA-256 in its name.

This class keeps each payload in a file; monitor/blobs.py keeps the same payloads in the database
or an S3 bucket instead (`[monitor] snapshots`), by replacing only the methods that read and write.

zstd (de)compression contexts are not thread-safe, and the web server reads from a thread pool:
each thread gets its own pair (a shared one crashed the server under two concurrent readers).
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import zstandard

from .files import write_atomic

LEVEL = 9
DELTA_MAGIC = b"MONDELTA1 "  # followed by the base digest (64 hex), a newline, then a zstd frame
_HEADER_LEN = len(DELTA_MAGIC) + 65
MAX_DEPTH = 3
# A delta bigger than this share of the blob's size means the pages have drifted apart: store
# the blob plain instead, so it can serve as the base of later deltas.
DELTA_WORTH = 0.08


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SnapshotError(Exception):
    pass


def _base(payload: bytes, digest: str) -> str:
    base = payload[len(DELTA_MAGIC):_HEADER_LEN - 1]
    if len(base) != 64 or not all(c in b"0123456789abcdef" for c in base) or payload[_HEADER_LEN - 1:_HEADER_LEN] != b"\n":
        raise SnapshotError(f"snapshot {digest[:12]}… is damaged: bad delta header")
    return base.decode("ascii")


def _decompress(decompressor: zstandard.ZstdDecompressor, frame: bytes) -> bytes:
    """Decompress without trusting the size the frame declares (a damaged header could claim
    terabytes); streamed output grows only as real data comes."""
    return decompressor.decompressobj().decompress(frame)


class Snapshots:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._local = threading.local()

    def _contexts(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        """This thread's compressor and decompressor for plain blobs."""
        local = self._local
        if not hasattr(local, "contexts"):
            local.contexts = (zstandard.ZstdCompressor(level=LEVEL), zstandard.ZstdDecompressor())
        return local.contexts

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise SnapshotError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / f"{digest}.zst"

    # ---- where payloads live: a file each here; a table or a bucket in monitor/blobs.py ------

    def __contains__(self, digest: str) -> bool:
        return self.path(digest).exists()

    def _head(self, digest: str) -> bytes:
        """The first bytes of a stored payload (enough to tell a delta's base)."""
        with open(self.path(digest), "rb") as handle:
            return handle.read(_HEADER_LEN)

    def _read(self, digest: str) -> bytes:
        """A stored payload, or SnapshotError when there is none."""
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise SnapshotError(f"snapshot {digest[:12]}… is missing from {self.root}") from None

    def _write(self, digest: str, payload: bytes) -> None:
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, payload)

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*.zst"))

    # ---- the codec: plain zstd frames and deltas, the same for every place ----------------------

    def base_of(self, digest: str) -> str | None:
        """The digest a stored delta depends on, or None for a plain blob."""
        head = self._head(digest)
        return _base(head, digest) if head.startswith(DELTA_MAGIC) else None

    def keyframe(self, digest: str | None) -> str | None:
        """A plain blob to use as a delta base in place of `digest` (itself, or its base)."""
        if digest is None or digest not in self:
            return None
        base = self.base_of(digest)
        return digest if base is None else (base if self.base_of(base) is None else None)

    def put(self, data: bytes, digest: str | None = None, base: str | None = None) -> str:
        """Store data under its SHA-256 (once); as a delta against `base` when that pays."""
        digest = digest or sha256(data)
        if digest in self:
            return digest
        payload = None
        if base is not None and base != digest and base in self:
            dictionary = zstandard.ZstdCompressionDict(self.get(base), dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            frame = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary).compress(data)
            if len(frame) <= DELTA_WORTH * len(data):
                payload = DELTA_MAGIC + base.encode("ascii") + b"\n" + frame
        if payload is None:
            payload = self._contexts()[0].compress(data)
        self._write(digest, payload)
        return digest

    def get(self, digest: str, _depth: int = 0) -> bytes:
        payload = self._read(digest)
        try:
            if payload.startswith(DELTA_MAGIC):
                if _depth >= MAX_DEPTH:
                    raise SnapshotError(f"snapshot {digest[:12]}… is damaged: its delta chain is too long")
                dictionary = zstandard.ZstdCompressionDict(self.get(_base(payload, digest), _depth + 1),
                                                           dict_type=zstandard.DICT_TYPE_RAWCONTENT)
                data = _decompress(zstandard.ZstdDecompressor(dict_data=dictionary), payload[_HEADER_LEN:])
            else:
                data = _decompress(self._contexts()[1], payload)
        except zstandard.ZstdError as exc:
            raise SnapshotError(f"snapshot {digest[:12]}… is damaged: {exc}") from None
        if sha256(data) != digest:
            raise SnapshotError(f"snapshot {digest[:12]}… is damaged: its content does not match its name")
        return data

    def get_text(self, digest: str) -> str:
        return self.get(digest).decode("utf-8")
