"""The process's running: the event loop (uvloop's where it is installed, measured cheaper per
request for the check pass; asyncio's own otherwise) and its malloc arenas."""
from __future__ import annotations

import asyncio
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro) on uvloop's loop when uvloop can be imported."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def one_arena() -> None:
    """Make every thread allocate from glibc's one main arena (mallopt M_ARENA_MAX = 1).

    By default each thread that mallocs (the store's writer, the resolver's and to_thread's pool)
    gets an arena of its own, and memory a large page freed in one arena cannot serve the next
    large page parsed in another: measured on bench/hostile_pass.py, peak RSS 157 MB with the
    default and 144 MB with one arena, same wall time (the threads hold the GIL for most of their
    work, so they seldom contend for the arena). Must run before those threads start; a no-op off
    glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(ctypes.c_int(-8), ctypes.c_int(1))  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
