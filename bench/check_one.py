"""CPU cost of one check of a ~50 KB blog post, extraction included.

The page is served from loopback by a separate process and the real Checker runs against a real
SQLite file; the figure is the checking process's CPU time for one check, three ways:
  new       — the first check of a page (fetch, extract, store the first version);
  chrome    — the page's bytes changed but its article did not (fetch, extract, compare):
              what every check costs on a page with rotating nonces and counters;
  edited    — a paragraph removed or a sentence reworded (fetch, extract, word diff, store the
              version and its change).
Each is the median of REPEATS checks. The reference is the core pipeline's cost per page from the
1000-page benchmark (README, Benchmarks), where a pass is CPU-bound: 11 ms per new page in the
baseline pass, measured before main-content extraction and volatile learning existed.

    python bench/check_one.py
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import sitegen  # noqa: E402

from monitor import config  # noqa: E402
from monitor.app import open_store  # noqa: E402
from monitor.check import Checker  # noqa: E402
from monitor.fetch import Fetcher  # noqa: E402

REPEATS = 30
CORE_MS_PER_PAGE = 11.0  # baseline pass of bench/check_pass.py: 11.0 s for 1000 new pages


def serve(root: Path) -> tuple[subprocess.Popen, int]:
    """A static file server in its own process, so the check's CPU time is the monitor's alone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    raise SystemExit("the page server did not start")


def chrome_variant(html: str, n: int) -> str:
    """The same article with a new nonce, as a CMS serves it on each request."""
    return html.replace("</body>", f"<script>var nonce='{n:032x}';</script></body>")


def edited(n: int) -> str:
    """The post after a real edit: a paragraph removed or a sentence reworded."""
    post = sitegen.build_post(7, n, REPEATS)
    sitegen.edit_post(post, random.Random(n))
    return sitegen.render(post)


async def measure(tmp: Path) -> dict[str, float]:
    posts = [sitegen.render(sitegen.build_post(7, i, REPEATS)) for i in range(REPEATS)]
    site = tmp / "site"
    site.mkdir()
    for i, html in enumerate(posts):
        (site / f"p{i}.html").write_text(html)
    server, port = serve(site)
    toml = tmp / "targets.toml"
    toml.write_text('[monitor]\nretries = 0\ncalibrate = false\n' + "".join(
        f'\n[[targets]]\nname = "p{i}"\nurl = "http://127.0.0.1:{port}/p{i}.html"\n' for i in range(REPEATS)))
    settings = config.load(toml)
    store = open_store(settings)
    states = store.sync_targets(settings)
    timings: dict[str, list[float]] = {"new": [], "chrome": [], "edited": []}
    try:
        async with Fetcher(settings.monitor) as fetcher:
            checker = Checker(settings, store, fetcher)
            for kind in ("new", "chrome", "edited"):
                for i, target in enumerate(settings.targets):
                    if kind != "new":
                        html = chrome_variant(posts[i], i) if kind == "chrome" else edited(i)
                        page = site / f"p{i}.html"
                        page.write_text(html)
                        # A later modification time, so the file server's If-Modified-Since
                        # (one-second resolution) sees the change.
                        later = time.time() + 10 * (1 + ("chrome", "edited").index(kind))
                        os.utime(page, (later, later))
                    started = time.process_time()
                    result = await checker.check(target, states[target.name])
                    timings[kind].append((time.process_time() - started) * 1000)
                    expected = {"new": "first", "chrome": "unchanged", "edited": "changed"}[kind]
                    if result.outcome != expected:
                        raise SystemExit(f"{kind}: expected {expected}, got {result.outcome}: {result.line()}")
    finally:
        store.close()
        server.terminate()
        server.wait()
    return {kind: statistics.median(values) for kind, values in timings.items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        medians = asyncio.run(measure(Path(tmp)))
    size = len(sitegen.render(sitegen.build_post(7, 0, REPEATS))) / 1000
    print(f"CPU time of one check of a {size:.0f} KB post, median of {REPEATS}:")
    for kind, ms in medians.items():
        print(f"  {kind:<7} {ms:6.1f} ms   {ms / CORE_MS_PER_PAGE:4.2f}x the core figure ({CORE_MS_PER_PAGE:.0f} ms per new page)")
    worst = max(medians.values()) / CORE_MS_PER_PAGE
    print(f"target: within 2x of the core figure: {'met' if worst <= 2 else 'MISSED'} (worst {worst:.2f}x)")


if __name__ == "__main__":
    main()
