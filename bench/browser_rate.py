"""The browser fetcher's cost: pages rendered per second and peak memory, for 50 pages whose
article a script writes, at browser_concurrency 1 and 2.

The pages are bench/sitegen.py's ~50 KB WordPress-like posts, each with its article body moved
out of the HTML into a JSON file that a script fetches after the page has loaded and writes into
the page (as JS-rendered newsrooms do). `python -m http.server` serves them from 127.0.0.1 in its
own process. For each concurrency, with a fresh database, `monitor check` runs as its own process
twice over 50 targets with `fetcher = "browser"` (screenshots on, the default):

  baseline   every page new: rendered, extracted, stored with its screenshot
  unchanged  the same pages again: rendered, extracted, found unchanged

Reported per pass: wall time of the whole process (interpreter start, Chromium's start, every
page), pages per second (50 / wall time), CPU time of the process tree, and the peak memory of
the process tree (monitor, Playwright's driver, Chromium's processes), sampled every 50 ms: the
sum of RSS (counts memory they share once per process, so it overstates) and the sum of PSS
(shared pages split among their users: what the tree costs the machine).
This is a measurement, not a test: the exit status is 0 unless the harness itself fails.

For reference, the same two passes with `fetcher = "http"` (the script-written article unseen).

Usage: python bench/browser_rate.py [--pages 50] [--concurrency 1 2] [--no-http] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import sitegen

REPO_ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MB = 1_000_000
SAMPLE_EVERY = 0.05
BODY = re.compile(r'(<div class="entry-content">\n)(.*?)(\n</div>\n<footer class="entry-footer">)', re.S)
OUTSIDE = re.compile(r'\b(src|srcset)="https?://[^/"]+')
SCRIPT = ("<script>window.addEventListener('load', () => fetch('{json}').then(answer => answer.json())"
          ".then(post => {{ document.querySelector('.entry-content').innerHTML = post.html; }}));</script>")


def write_site(root: Path, pages: int) -> list[str]:
    """posts/N.html (the article body left empty) and posts/N.json (the body); returns the pages' paths."""
    posts = root / "posts"
    posts.mkdir(parents=True)
    paths = []
    for index in range(1, pages + 1):
        # Every resource from loopback: sitegen's avatars point at a public host.
        page = OUTSIDE.sub(r'\1="', sitegen.render(sitegen.build_post(1, index, pages)))
        match = BODY.search(page)
        if match is None:
            raise RuntimeError("sitegen's article markup changed: no entry-content to move out")
        (posts / f"{index}.json").write_text(json.dumps({"html": match.group(2)}))
        shell = page[:match.start(2)] + page[match.end(2):]
        shell = shell.replace("</body>", SCRIPT.format(json=f"/posts/{index}.json") + "\n</body>")
        (posts / f"{index}.html").write_text(shell)
        paths.append(f"/posts/{index}.html")
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(root: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root),
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/posts/1.json", timeout=1).read()
            return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the page server did not start")


def config(port: int, paths: list[str], concurrency: int, fetcher: str = "browser") -> str:
    text = (f'[monitor]\nretries = 0\ncalibrate = false\nbrowser_concurrency = {concurrency}\n'
            f'per_host = {max(2, concurrency)}\n')
    for i, path in enumerate(paths, 1):
        text += f'\n[[targets]]\nname = "post-{i}"\nurl = "http://127.0.0.1:{port}{path}"\nfetcher = "{fetcher}"\n'
    return text


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _tree(pid: int) -> list[int]:
    children, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process, in bytes; zeros once it has gone."""
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        pss = int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1)) * 1024
        return rss, pss
    except (OSError, AttributeError, IndexError):
        return 0, 0


class Sampler(threading.Thread):
    """The peak RSS and PSS sums of a process and its descendants."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_rss, self.peak_pss, self.processes = pid, 0, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pids = _tree(self.pid)
            sizes = [_memory(p) for p in pids]
            self.peak_rss = max(self.peak_rss, sum(r for r, _ in sizes))
            self.peak_pss = max(self.peak_pss, sum(p for _, p in sizes))
            self.processes = max(self.processes, len(pids))
            self.done.wait(SAMPLE_EVERY)


def run_pass(workdir: Path, pages: int) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "monitor", "check", "--config", str(workdir / "targets.toml")],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    sampler = Sampler(process.pid)
    sampler.start()
    output = process.communicate()[0]
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    summary = output.strip().splitlines()[-2:] if output.strip() else []
    errors = [line for line in output.splitlines() if ": ERROR " in line]
    return {"wall_s": round(wall, 2), "pages_per_s": round(pages / wall, 2), "peak_rss_mb": round(sampler.peak_rss / MB, 1),
            "peak_pss_mb": round(sampler.peak_pss / MB, 1), "processes": sampler.processes,
            "errors": len(errors), "first_error": errors[0] if errors else None, "summary": summary}


def cpu_of_children() -> float:
    """CPU seconds of the finished children: a reaped process counts with the children it reaped."""
    usage = os.times()
    return usage.children_user + usage.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--http", action=argparse.BooleanOptionalAction, default=True,
                        help="also the same pages with fetcher = \"http\", for reference")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="browser-rate-") as tmp:
        root = Path(tmp)
        paths = write_site(root / "site", args.pages)
        server, port = serve(root / "site")
        try:
            runs = [("browser", c) for c in args.concurrency] + ([("http", 1)] if args.http else [])
            for fetcher, concurrency in runs:
                label = f"browser_concurrency={concurrency}" if fetcher == "browser" else 'fetcher="http"'
                workdir = root / f"{fetcher}-{concurrency}"
                workdir.mkdir()
                (workdir / "targets.toml").write_text(config(port, paths, concurrency, fetcher))
                for name in ("baseline", "unchanged"):
                    before = cpu_of_children()
                    result = run_pass(workdir, args.pages)
                    result.update(fetcher=fetcher, concurrency=concurrency, passed=name,
                                  cpu_s=round(cpu_of_children() - before, 2),
                                  stored_mb=round(sum(f.stat().st_size for f in workdir.rglob("*") if f.is_file()) / MB, 1))
                    results.append(result)
                    if not args.json:
                        print(f"{label} {name:9}: {result['wall_s']:6.2f} s wall, "
                              f"{result['pages_per_s']:5.2f} pages/s, CPU {result['cpu_s']:6.2f} s, peak RSS sum "
                              f"{result['peak_rss_mb']:6.1f} MB, peak PSS sum {result['peak_pss_mb']:6.1f} MB "
                              f"({result['processes']} processes), stored {result['stored_mb']} MB, "
                              f"errors {result['errors']}", flush=True)
        finally:
            server.terminate()
            server.wait(10)
    if args.json:
        print(json.dumps({"pages": args.pages, "cpus": os.cpu_count(), "load": os.getloadavg(), "results": results}))


if __name__ == "__main__":
    main()
