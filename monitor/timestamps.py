"""RFC 3161 trusted timestamps of a target's chain head, from the time-stamping authority (TSA)
at `[monitor] timestamp_url`.

The chain head is the SHA-256 of the newest version's record (monitor/chain.py), and the head
itself is what the TSA signs (the request's message imprint: SHA-256 of that record). Its token
shows that the history up to that version existed, as it is now, at the TSA's time: rewriting
it later cannot make the TSA sign an earlier time. Anyone can check a token offline:

    openssl ts -verify -digest HEAD -in head.tsr -CAfile tsa-ca.pem

The TSA's whole reply (a TimeStampResp, what `openssl ts -reply` writes: a .tsr file) is kept in
the snapshot store by its SHA-256, with a row naming the target, the head it covers, the TSA and
the time it gives. A timestamp is asked for after a check records a new version (an outbox job
on the channel routing.TIMESTAMP: retried with backoff, never holding up a check) and on demand
(`monitor timestamp`). A TSA's answer is hostile like any other: read up to MAX_REPLY bytes within
ASK_TIME seconds, and kept only when it grants a token over exactly the head and nonce asked.
ASN.1 through asn1crypto, which reads the not-quite-DER that real TSAs write.
"""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
from sqlalchemy import select

from . import chain
from .fetch import retry_after
from .models import Target, Timestamp, utcnow
from .read import TIMESTAMP, stamps
from .snapshots import SnapshotError
from .times import iso

MAX_REPLY = 256 * 1024  # a reply with its certificate chain is a few kilobytes
ASK_TIME = 30.0  # seconds for the whole exchange with the TSA
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"


class TimestampError(Exception):
    """A timestamp not obtained (the message names the target or the TSA and what went wrong).
    `retry_after`: the TSA said when to come back; `pause`: it throttled us or did not answer."""

    def __init__(self, message: str, retry_after: float | None = None, pause: bool = False):
        super().__init__(message)
        self.retry_after, self.pause = retry_after, pause


def query(head: str, nonce: int) -> bytes:
    """A DER TimeStampReq for the SHA-256 digest `head` (hex), asking for the TSA's certificate."""
    from asn1crypto import tsp

    return tsp.TimeStampReq({"version": 1, "nonce": nonce, "cert_req": True, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": bytes.fromhex(head)}}).dump()


@dataclass
class Token:
    """What a reply grants, read from its TSTInfo."""

    head: str  # the digest it covers (hex)
    stamped_at: datetime  # genTime
    serial: int
    nonce: int | None


def read_token(reply: bytes) -> Token:
    """The granted token in a TimeStampResp; ValueError saying what is wrong with it."""
    from asn1crypto import tsp

    try:
        response = tsp.TimeStampResp.load(reply)
        status = response["status"]
        granted = status["status"].native in ("granted", "granted_with_mods")
        if not granted:
            said = "; ".join(status["status_string"].native or []) or ", ".join(status["fail_info"].native or [])
            raise _Refused(f"refused: {status['status'].native}" + (f" ({said[:200]})" if said else ""))
        token = response["time_stamp_token"]
        signed = token["content_type"].native == "signed_data"
        info = token["content"]["encap_content_info"]["content"].parsed if signed else None
        if info is None:
            raise _Refused("its token is not CMS signed data")
        imprint = info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        found = Token(imprint["hashed_message"].native.hex(), info["gen_time"].native.astimezone(timezone.utc),
                      info["serial_number"].native, info["nonce"].native)
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"not a timestamp reply (RFC 3161 TimeStampResp): {detail}") from None
    if algorithm != "sha256":
        raise ValueError(f"its token covers a {algorithm} digest, not SHA-256")
    return found


class _Refused(Exception):
    """A well-formed reply that grants no usable token."""


async def ask(client: httpx.AsyncClient, url: str, head: str) -> tuple[bytes, Token]:
    """The TSA at `url`'s reply for `head`, checked: granted, over `head`, with our nonce."""
    nonce = secrets.randbits(63)
    tsa = f"TSA {url}"
    try:
        async with asyncio.timeout(ASK_TIME), client.stream(
                "POST", url, content=query(head, nonce),
                headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE}) as response:
            reply = b""
            async for chunk in response.aiter_raw():
                reply += chunk
                if len(reply) > MAX_REPLY:
                    raise TimestampError(f"{tsa}: answer larger than {MAX_REPLY:,} bytes")
    except (TimeoutError, httpx.TimeoutException):
        raise TimestampError(f"{tsa}: no answer within {ASK_TIME:.0f} s", pause=True) from None
    except httpx.HTTPError as exc:
        raise TimestampError(f"{tsa}: {type(exc).__name__}: {str(exc)[:200]}", pause=True) from None
    if response.status_code != 200:
        wait = retry_after(response.headers.get("retry-after"))
        raise TimestampError(f"{tsa}: HTTP {response.status_code}", retry_after=wait,
                             pause=response.status_code == 429 or wait is not None)
    try:
        token = read_token(reply)
    except ValueError as exc:
        raise TimestampError(f"{tsa}: {exc}") from None
    if token.head != head:
        raise TimestampError(f"{tsa}: its token covers {token.head[:12]}…, not the head asked for ({head[:12]}…)")
    if token.nonce != nonce:
        raise TimestampError(f"{tsa}: its token does not carry the nonce asked for (a replayed answer?)")
    return reply, token


@dataclass
class Stamped:
    """A target's chain head and its timestamp: `fresh` when just obtained."""

    target: str
    seq: int
    head: str
    stamp: object  # a timestamps row (read.TIMESTAMP)
    fresh: bool


async def stamp(store, client: httpx.AsyncClient, url: str | None, name: str) -> Stamped:
    """A timestamp of target `name`'s chain head: the one already stored, else one from the TSA
    at `url`. Refused when the chain is broken (it would vouch for an altered history)."""
    with store.engine.connect() as conn:
        target_id = conn.execute(select(Target.id).where(Target.name == name)).scalar()
        newest = chain.newest(conn, target_id) if target_id is not None else None
    if newest is None:
        raise TimestampError(f"{name}: no versions stored yet: nothing to timestamp")
    head = chain.digest(newest)
    known = stamps(store, target_id, head)
    if known:
        return Stamped(name, newest.seq, head, known[-1], False)  # the earliest: the strongest
    if url is None:
        raise TimestampError(f"{name}: its chain head (v{newest.seq}) has no timestamp and no [monitor] "
                             "timestamp_url is set to ask for one")
    checked = chain.verify(store, target_id, name, snapshots=False)
    if not checked.ok or checked.head != head:
        raise TimestampError(f"{name}: its hash chain is broken ({checked.problem or 'it moved on'}); "
                             f"not timestamped: run `monitor verify {name}`")
    try:
        reply, token = await ask(client, url, head)
    except TimestampError as exc:
        raise TimestampError(f"{name}: {exc}", retry_after=exc.retry_after, pause=exc.pause) from None
    sha = store.snapshots.put(reply)
    with store.engine.begin() as conn:
        row_id = conn.execute(Timestamp.__table__.insert().values(
            target_id=target_id, head=head, token_sha=sha, tsa_url=url, stamped_at=token.stamped_at,
            received_at=utcnow())).inserted_primary_key[0]
        row = conn.execute(select(*TIMESTAMP).where(Timestamp.id == row_id)).first()
    return Stamped(name, newest.seq, head, row, True)


def client(user_agent: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False, headers={"User-Agent": user_agent})


def token_of(store, row) -> bytes:
    """A stored timestamp's reply (.tsr), checked against its SHA-256 (SnapshotError if damaged)."""
    return store.snapshots.get(row.token_sha)


@dataclass
class Checked:
    """One stored timestamp as `monitor verify` found it. `seq`: the version whose record it covers,
    None when that head is no longer in the chain."""

    stamp: object
    seq: int | None = None
    problem: str | None = None


def check(store, target_id: int, verified: chain.Verified, imported: bool) -> list[Checked]:
    """Re-read each of a target's timestamps: its token must be intact and cover the head it is
    stored for, and that head should be a link of the chain. A head no longer in the chain means
    the history was re-linked after the timestamp: an import does that (`imported`); otherwise the
    history was rewritten, a problem."""
    found = []
    for row in stamps(store, target_id):
        when = f"the timestamp of {iso(row.stamped_at)} (head {row.head[:12]}…)"
        checked = Checked(row, verified.links.get(row.head))
        try:
            token = read_token(token_of(store, row))
            if token.head != row.head:
                checked.problem = f"{when}: its token covers {token.head[:12]}…, not that head"
        except (ValueError, SnapshotError, OSError) as exc:
            checked.problem = f"{when}: its token file fails: {exc}"
        if checked.problem is None and checked.seq is None and verified.ok and not imported:
            checked.problem = (f"{when}: that head is no longer in the chain, and nothing was imported since: "
                               "the history was rewritten after it was timestamped")
        found.append(checked)
    return found


class Stamper:
    """The outbox's sender for the channel routing.TIMESTAMP: it timestamps the alert's target's
    chain head as it is when the job runs, so versions recorded before it ran share one token."""

    def __init__(self, url: str, client: httpx.AsyncClient, store):
        self.url, self.client, self.store = url, client, store

    async def send(self, message) -> None:
        from .alerts.base import DeliveryError

        try:
            await stamp(self.store, self.client, self.url, message.target)
        except TimestampError as exc:
            raise DeliveryError(f"timestamp: {exc}", retry_after=exc.retry_after, pause=exc.pause) from None
