"""Who is working, and for how long a claim holds: the identity behind the leases that let one
process at a time check a target or send an alert (monitor/store.py takes and releases them).

A worker is `host:pid:start` (start: the process's start time), so a claim names the process
that holds it. A claim by a process of this same host that no longer runs (killed, crashed, the
machine rebooted, or its pid now taken by another program) is free at once: a daemon restarted
after `kill -9` carries on without waiting. Any other claim holds until it expires; its holder
renews it while it works. "This same host" is the same machine and the same process ids: a
process in a container with a PID namespace of its own is `hostname/namespace`, since containers
sharing the machine's host name (host networking) each have their own pid 1.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

log = logging.getLogger("monitor.lease")

MIN_LEASE = 120.0  # seconds
MAX_WAIT = 60.0  # seconds a fetch waits out a host's pause (monitor/fetch.py); a claim outlasts it


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[-1].split()[19].decode()  # field 22; the name may hold spaces


_me: tuple[int, str] | None = None
INITIAL_PID_NAMESPACE = 0xEFFFFFFC  # the inode of the machine's own PID namespace (Linux's PROC_PID_INIT_INO)


def machine() -> str:
    """Where this process's pid means something: the host name, and the PID namespace when it is
    not the machine's own (a container's)."""
    try:
        space = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux, or no /proc
        space = INITIAL_PID_NAMESPACE
    host = socket.gethostname()
    return host if space == INITIAL_PID_NAMESPACE else f"{host}/{space}"


def worker_id() -> str:
    """This process's identity (a forked child gets its own)."""
    global _me
    pid = os.getpid()
    if _me is None or _me[0] != pid:
        _me = (pid, f"{machine()}:{pid}:{_start_time(pid) or int(time.time())}")
    return _me[1]


def is_gone(worker: str) -> bool:
    """Whether `worker` is known to have ended: a process of this host whose pid is not running,
    or is running but started at another time (a reused pid). Another host's worker is never
    known to be gone; its claims expire instead."""
    host, _, rest = worker.partition(":")
    pid, _, start = rest.partition(":")
    if host != machine() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # running, as another user
        pass
    now = _start_time(int(pid))
    return now is not None and start.isdigit() and now != start


GONE_EVERY = 2.0  # seconds between looks for claims held by processes that have ended


class Gone:
    """The holders of claims known to have ended, per kind of claim: finding them reads every
    holder, so it is done at most every GONE_EVERY seconds (a daemon claims many times a second);
    a process that ended stays ended, so a list found earlier stays true."""

    def __init__(self):
        self._found: dict[str, tuple[float, list[str]]] = {}  # kind -> (until when, holders known ended)

    def holders(self, kind: str, read) -> list[str]:
        """Those of `read()` (the holders of claims of this kind) that are gone."""
        cached = self._found.get(kind)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        gone = [w for w in read() if is_gone(w)]
        self._found[kind] = (time.monotonic() + GONE_EVERY, gone)
        return gone


def length(monitor) -> float:
    """How long a claim holds without renewal, in seconds: twice the longest one check may take
    (every attempt timing out, the backoff between attempts, and a host pause waited out), and at
    least two minutes. The holder renews at a third of it, so a live process never loses a claim
    even when a renewal comes late (a busy database, a long parse); a process that died on
    another host blocks its targets for at most this long. Defaults: 3 x 30 s + 7 s + 60 s,
    doubled: about 5 minutes."""
    attempts = monitor.retries + 1
    one_check = attempts * monitor.timeout + monitor.retry_backoff * (2 ** attempts - 1) + MAX_WAIT
    return max(MIN_LEASE, 2 * one_check)


@contextlib.asynccontextmanager
async def renewing(renew, every: float):
    """Call `renew()` every `every` seconds while the block runs (the holder's claims stay
    alive however long its work takes)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                renew()
            except Exception:  # a busy database: the next renewal is still well within the lease
                log.warning("could not renew claims", exc_info=True)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
