"""Bytes from the network -> a page's text, within bounds a hostile server cannot push past.

Content-Encoding: each layer (gzip, deflate, br, zstd, stacked in any order) is decoded step by
step with its output bounded per step, so a 2 KB compression bomb costs at most `limit` bytes and
the time to produce them, never gigabytes in one call. Unknown encodings are refused.

Charset: chosen the way a browser does (BOM, Content-Type, <meta>, UTF-8, windows-1252), from the
WHATWG Encoding Standard's labels only: `charset=hex`, `rot13` or `idna` are unknown labels and
skipped, as browsers skip them.

>>> import gzip
>>> decoder = BodyDecoder("gzip, gzip", limit=1000)
>>> decoder.feed(gzip.compress(gzip.compress(b"<p>hello</p>"))) + decoder.finish()
b'<p>hello</p>'
>>> BodyDecoder("gzip", limit=1000).feed(gzip.compress(b"x" * 5000))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
monitor.decoding.TooLarge: body too large: more than 1,000 bytes once decoded (limit)
>>> decode(b"<meta charset=hex><p>caf\\xc3\\xa9</p>", "text/html; charset=rot13")
('<meta charset=hex><p>café</p>', 'utf-8')
"""
from __future__ import annotations

import codecs
import re
import zlib

import webencodings

ENCODINGS = ("gzip", "x-gzip", "deflate", "br", "zstd")
ACCEPT_ENCODING = "gzip, deflate, br, zstd"
ZSTD_MAX_WINDOW = 8 << 20  # RFC 9659: a zstd content-coding needs no window over 8 MB
ZSTD_STEP = 64  # input bytes per zstd step: a zstd block (<= 128 KB out) costs >= 3 bytes in
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class DecodeError(Exception):
    """A body that cannot be decoded: an unknown or broken content encoding."""


class TooLarge(DecodeError):
    pass


class _Layer:
    """One content-coding: feed(data, room) -> at most room + 1 bytes of output (+1 so the caller
    sees the excess), keeping the rest of its work for the next call."""

    name = ""

    def feed(self, data: bytes, room: int) -> bytes:
        raise NotImplementedError

    def finished(self) -> bool:
        raise NotImplementedError


class _Zlib(_Layer):
    def __init__(self, name: str):
        self.name = name
        self._wbits = 16 + zlib.MAX_WBITS if name != "deflate" else None
        self._obj = zlib.decompressobj(self._wbits) if self._wbits else None
        self._head = b""

    def feed(self, data: bytes, room: int) -> bytes:
        if self._obj is None:  # deflate: zlib-wrapped (RFC 9110) or, as some servers send, raw
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        out, size = [], 0
        while data:
            if size > room:
                break
            try:
                piece = self._obj.decompress(data, room + 1 - size)
            except zlib.error as exc:
                raise DecodeError(f"bad {self.name} data: {exc}") from None
            out.append(piece)
            size += len(piece)
            data = self._obj.unconsumed_tail
            if self._obj.eof and self._obj.unused_data:
                data = self._obj.unused_data
                if self._wbits and data.strip(b"\0"):  # gzip: another member follows
                    self._obj = zlib.decompressobj(self._wbits)
                else:
                    break  # trailing junk after the stream is ignored, as browsers do
        return b"".join(out)

    def finished(self) -> bool:
        return self._obj is not None and self._obj.eof


class _Brotli(_Layer):
    name = "br"

    def __init__(self):
        import brotli

        self._error = brotli.error
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes, room: int) -> bytes:
        out, size = [], 0
        try:
            out.append(self._obj.process(data, output_buffer_limit=room + 1))
            size = len(out[0])
            while not self._obj.can_accept_more_data() and size <= room:
                piece = self._obj.process(b"", output_buffer_limit=room + 1 - size)
                if not piece:
                    break
                out.append(piece)
                size += len(piece)
        except self._error as exc:
            raise DecodeError(f"bad br data: {exc}") from None
        return b"".join(out)

    def finished(self) -> bool:
        return self._obj.is_finished()


class _Zstd(_Layer):
    name = "zstd"

    def __init__(self):
        import zstandard

        self._error = zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._obj = self._dctx.decompressobj()
        self._frames = 0

    def feed(self, data: bytes, room: int) -> bytes:
        out, size, view = [], 0, memoryview(data)
        try:
            while view and size <= room:
                if self._obj.eof:  # another frame follows
                    self._obj = self._dctx.decompressobj()
                piece = self._obj.decompress(view[:ZSTD_STEP].tobytes())
                view = view[ZSTD_STEP:]
                out.append(piece)
                size += len(piece)
        except self._error as exc:
            raise DecodeError(f"bad zstd data: {exc}") from None
        return b"".join(out)

    def finished(self) -> bool:
        return self._obj.eof


def _layer(name: str) -> _Layer:
    if name in ("gzip", "x-gzip", "deflate"):
        return _Zlib(name)
    if name == "br":
        return _Brotli()
    if name == "zstd":
        return _Zstd()
    raise DecodeError(f"unsupported content encoding {name!r} (supported: {', '.join(ENCODINGS)})")


class BodyDecoder:
    """Decodes a body as it arrives, the Content-Encoding layers undone in reverse order, and
    raises TooLarge as soon as the decoded output would pass `limit` bytes."""

    def __init__(self, content_encoding: str | None, limit: int):
        names = [n.strip().lower() for n in (content_encoding or "").split(",")]
        self.layers = [_layer(n) for n in reversed(names) if n and n != "identity"]
        self.limit = limit
        self.size = 0

    def feed(self, data: bytes) -> bytes:
        for layer in self.layers:
            if not data:
                return b""
            data = layer.feed(data, self.limit - self.size)
            if len(data) > self.limit - self.size:
                raise TooLarge(f"body too large: more than {self.limit:,} bytes once decoded (limit)")
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"body too large: more than {self.limit:,} bytes (limit)")
        return data

    def finish(self) -> bytes:
        """Check that every compressed layer reached its end: a truncated body is an error, not a
        shorter page (which would read as removed text)."""
        for layer in self.layers:
            if not layer.finished():
                raise DecodeError(f"{layer.name} body ends early (truncated)")
        return b""


def charset(label: str | None) -> str | None:
    """A WHATWG encoding label -> Python codec name, or None for a label browsers don't know."""
    if not label:
        return None
    encoding = webencodings.lookup(label.strip().strip("\"'"))
    if encoding is None or encoding.name in ("replacement", "x-user-defined"):
        return None
    return encoding.codec_info.name


def decode(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Bytes -> text the way a browser picks the charset: BOM, Content-Type, <meta>, UTF-8,
    windows-1252. An unknown charset label is skipped, as browsers do, rather than failing the page."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace"), name
    candidates = []
    if content_type and "charset=" in content_type.lower():
        candidates.append(charset(content_type.lower().split("charset=", 1)[1].split(";")[0]))
    match = _META_CHARSET.search(body[:4096])
    if match:
        candidates.append(charset(match.group(1).decode("ascii", "replace")))
    for name in candidates:
        if name:
            return body.decode(name, errors="replace"), name
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace"), "cp1252"


# The WHATWG MIME Sniffing Standard's binary data bytes, and signatures of formats that are never
# a web page even when a server labels them text/html. A real page may hold a stray control
# character, so a few of them are tolerated; a NUL, or many, are not text.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_SIGNATURES = (b"%PDF-", b"%!PS-", b"PK\x03\x04", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x1f\x8b", b"BZh",
               b"7z\xbc\xaf", b"\x7fELF", b"OggS", b"ID3", b"RIFF", b"\x00asm", b"\xd0\xcf\x11\xe0", b"\x28\xb5\x2f\xfd")
SNIFF_BYTES = 1445


def binary_kind(body: bytes, content_type: str | None = None) -> str | None:
    """Why a body is not text ("a PDF document", "binary content"), or None for text. UTF-16 text
    (a BOM, or the charset label) is full of NUL bytes and is text all the same."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    label = (content_type or "").lower().partition("charset=")[2].split(";")[0]
    if label and (charset(label) or "").startswith("utf-16"):
        return None
    stripped = body.lstrip(b" \t\r\n")
    if stripped.startswith(b"%PDF-"):
        return "a PDF document"
    if stripped.startswith(_SIGNATURES) or body[4:8] == b"ftyp":
        return "binary content"
    head = body[:SNIFF_BYTES]
    if b"\x00" in head or len(_BINARY_BYTES.findall(head)) > len(head) // 20:
        return "binary content"
    return None
