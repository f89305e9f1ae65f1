"""Benchmark the discovery of a blog whose sitemaps are as large as the protocol allows.

Three runs, each in a fresh workspace as a separate `monitor sites --discover` process:

  one sitemap        one <urlset> of N URLs (default 50,000, the sitemap protocol's maximum)
  index              a <sitemapindex> of C children (default 10) of N URLs each
  index, default cap the same index with the default max_posts (100,000): what the cap bounds

The sitemaps are served from 127.0.0.1 by the standard library's HTTP server (robots.txt answers
404, so every URL is allowed; each URL is still checked against it). In the first two runs the
site's max_posts is the number of URLs, so every URL becomes a post. Each run reports wall time,
the process's peak RSS (os.wait4) and the posts stored; one still running after --timeout seconds
is killed and reported as such. This is a measurement, not a test: exit status 0 unless the
harness itself fails.

Usage: python bench/discovery_scale.py [--urls 50000] [--children 10] [--timeout 600] [--keep DIR] [--json]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def write_sitemap(path: Path, base_url: str, prefix: str, count: int) -> None:
    with path.open("w") as f:
        f.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>\n')
        for i in range(count):
            f.write(f"<url><loc>{base_url}/{prefix}/2024/05/{i:06d}-a-post-about-item-{i}/</loc>"
                    f"<lastmod>2024-05-{1 + i % 28:02d}</lastmod></url>\n")
        f.write("</urlset>\n")


def write_index(path: Path, base_url: str, children: list[str]) -> None:
    locs = "".join(f"<sitemap><loc>{base_url}/{c}</loc></sitemap>\n" for c in children)
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex {NS}>\n{locs}</sitemapindex>\n')


def write_config(work: Path, sitemap_url: str, max_posts: int | None) -> Path:
    config = work / "targets.toml"
    config.write_text(f"""[monitor]
timeout = "60s"

[[sites]]
name = "big"
sitemaps = ["{sitemap_url}"]
""" + (f"max_posts = {max_posts}\n" if max_posts else ""))
    return config


def run_measured(command: list[str], timeout: float, log: Path) -> dict:
    """Wall time and peak RSS of one child process (os.wait4), killed after `timeout` seconds."""
    with log.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
        finished = True
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                process.send_signal(signal.SIGKILL)
                _, status, usage = os.wait4(process.pid, 0)
                finished = False
                break
            time.sleep(0.05)
    return {"seconds": round(time.perf_counter() - start, 1), "finished": finished,
            "exit": os.waitstatus_to_exitcode(status) if finished else None,
            "peak_rss_mb": round(usage.ru_maxrss * 1024 / 1e6, 1)}   # ru_maxrss: KiB on Linux


def posts_stored(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM targets WHERE site_id IS NOT NULL").fetchone()[0]


def scenario(name: str, work: Path, base_url: str, entry: str, total: int, timeout: float,
             max_posts: int | None) -> dict:
    work.mkdir(parents=True)
    config = write_config(work, f"{base_url}/{entry}", max_posts)
    measured = run_measured([sys.executable, "-m", "monitor", "sites", "--discover", "--config", str(config)],
                            timeout, work / "discover.log")
    return {"scenario": name, "urls": total, **measured, "posts": posts_stored(work / "monitor.db")}


def serve(root: Path) -> ThreadingHTTPServer:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def benchmark(root: Path, urls: int, children: int, timeout: float) -> list[dict]:
    site = root / "site"
    site.mkdir(parents=True)
    httpd = serve(site)
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        write_sitemap(site / "one.xml", base_url, "one", urls)
        names = [f"child-{i}.xml" for i in range(children)]
        for i, child in enumerate(names):
            write_sitemap(site / child, base_url, f"c{i}", urls)
        write_index(site / "index.xml", base_url, names)
        total = urls * children
        return [scenario("one sitemap", root / "one", base_url, "one.xml", urls, timeout, urls),
                scenario(f"index of {children}", root / "index", base_url, "index.xml", total, timeout, total),
                scenario(f"index of {children}, default max_posts", root / "capped", base_url, "index.xml", total,
                         timeout, None)]
    finally:
        httpd.shutdown()
        httpd.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=50_000, help="URLs per sitemap (default 50,000)")
    parser.add_argument("--children", type=int, default=10, help="child sitemaps of the index (default 10)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a discovery is killed")
    parser.add_argument("--keep", type=Path, help="build in this (new) directory and keep it")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    if args.keep:
        results = benchmark(args.keep, args.urls, args.children, args.timeout)
    else:
        with tempfile.TemporaryDirectory(prefix="discovery-scale-") as tmp:
            results = benchmark(Path(tmp), args.urls, args.children, args.timeout)
    if args.json:
        print(json.dumps(results))
        return 0
    for r in results:
        status = "done" if r["finished"] else f"killed after {args.timeout:g}s"
        print(f"{r['scenario']:<32} {r['urls']:>8,} URLs  {r['seconds']:>7.1f} s  "
              f"peak RSS {r['peak_rss_mb']:>6.1f} MB  {r['posts']:>8,} posts stored  ({status}, exit {r['exit']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
