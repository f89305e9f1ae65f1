"""CPU cost of one check of a ~50 KB blog post, extraction included.

The page is served from loopback by a separate process and the real Checker runs against a real
SQLite file; the figure is the checking process's CPU time for one check, three ways:
  new       — the first check of a page (fetch, extract, store the first version);
  chrome    — the page's bytes changed but its article did not (fetch, extract, compare):
              what every check costs on a page with rotating nonces and counters;
  edited    — a paragraph removed or a sentence reworded (fetch, extract, word diff, store the
              version and its change).
Each is the median of REPEATS checks. The reference is measured in the same run: the same three
kinds of check by the monitor package as it was at REFERENCE (a commit; `--reference REV` picks
another), exported with `git archive` into a temporary folder and run in a process of its own.
The target: no kind of check costs more than 2x the reference's.

    python bench/check_one.py                  # this tree against REFERENCE
    python bench/check_one.py --reference HEAD # against the last commit
"""
from __future__ import annotations

import argparse
import asyncio
import json
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
# --source DIR: import the monitor package from DIR (the reference's export) instead of this tree.
SOURCE = Path(sys.argv[sys.argv.index("--source") + 1]) if "--source" in sys.argv else ROOT.parent
sys.path.insert(0, str(SOURCE))
sys.path.insert(0, str(ROOT))

import sitegen  # noqa: E402

from monitor import config  # noqa: E402
from monitor.app import open_store  # noqa: E402
from monitor.check import Checker  # noqa: E402
from monitor.fetch import Fetcher  # noqa: E402
try:  # the configured targets' rows (the reference commit's store took the settings itself)
    from monitor.sync import sync_targets  # noqa: E402
except ImportError:
    def sync_targets(settings, store):
        return store.sync_targets(settings)

REPEATS = 30
REFERENCE = "a02f9935c853dd8ae126c0638d643af5475f9cbd"  # the last commit before issue 11's extraction (scope pinning, split articles)


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
    states = sync_targets(settings, store)
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


def reference_medians(rev: str) -> dict[str, float]:
    """The same measurement by the monitor package at commit rev, in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT.parent), "archive", rev, "monitor"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = subprocess.run([sys.executable, __file__, "--source", tmp, "--json"], capture_output=True,
                             text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description="CPU time of one check, against a reference commit")
    ap.add_argument("--reference", default=REFERENCE, help=f"commit to compare with (default {REFERENCE[:10]})")
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="only print the medians as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        medians = asyncio.run(measure(Path(tmp)))
    if args.json:
        return print(json.dumps(medians))
    reference = reference_medians(args.reference)
    size = len(sitegen.render(sitegen.build_post(7, 0, REPEATS))) / 1000
    print(f"CPU time of one check of a {size:.0f} KB post, median of {REPEATS}; reference: {args.reference[:10]}")
    for kind, ms in medians.items():
        print(f"  {kind:<7} {ms:6.1f} ms   reference {reference[kind]:6.1f} ms   {ms / reference[kind]:4.2f}x")
    worst = max(medians[k] / reference[k] for k in medians)
    print(f"target: within 2x of the reference: {'met' if worst <= 2 else 'MISSED'} (worst {worst:.2f}x)")


if __name__ == "__main__":
    main()
