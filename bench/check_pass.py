"""Benchmark one `monitor check` pass over a fleet of local blog-post pages.

Generates N WordPress-like pages (~50 KB each), serves them with a private
nginx on 127.0.0.1, then times three separate `monitor check` processes:

  baseline    first pass, every page is new
  unchanged   the same pages again
  edited-10%  after rewriting 10% of the pages with a real content edit

For each pass it reports wall time and the child's peak RSS; afterwards the
bytes stored (database files + snapshots/). This is a measurement, not a
test: the exit status is 0 whether or not the targets are met, and non-zero
only when the harness itself fails.

Usage: python bench/check_pass.py [--posts 1000] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import sitegen
import static_server

# External reference figure, NOT measured here: one urlwatch 2.29 pass over
# the same kind of fleet (1000 pages) on this machine class, as quoted in
# the project's issue. Pass times are reported as ratios to it.
REFERENCE_URLWATCH_S = 3.6
REFERENCE_NOTE = ("external reference figure from the project's issue "
                  "(urlwatch 2.29, one pass, same kind of fleet, same machine class); "
                  "not measured by this script")

REFERENCE_POSTS = 1000            # fleet size the targets were set for
EDIT_FRACTION = 0.10
SEED = 1
MB = 1_000_000                    # decimal megabytes throughout

REPO_ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "monitor.db"
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


class HarnessError(RuntimeError):
    pass


@dataclass
class Measured:
    wall_s: float
    peak_rss_bytes: int


@dataclass
class PassResult:
    name: str
    wall_s: float
    peak_rss_bytes: int
    requests: int | None
    ratio_to_reference: float


@dataclass
class Target:
    label: str
    value: float
    limit: float
    unit: str

    @property
    def met(self) -> bool:
        return self.value <= self.limit


# --------------------------------------------------------------------------
# Measuring child processes
# --------------------------------------------------------------------------

def run_measured(command: list[str], log_prefix: Path | None = None, **popen) -> Measured:
    """Run `command` to completion; wall time and that child's own peak RSS.

    os.wait4 gives the resource usage of exactly this child (unlike
    RUSAGE_CHILDREN, which accumulates over every child ever waited for).
    Output goes to files so a chatty child can never block on a full pipe.
    """
    with _output_file(log_prefix, "stdout") as out, _output_file(log_prefix, "stderr") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, **popen)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            err.seek(0)
            raise HarnessError(f"{' '.join(command)} exited with status {process.returncode}\n"
                               f"--- stderr ---\n{err.read().decode(errors='replace')[-8000:]}")
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    rss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return Measured(wall, rss)


def _output_file(prefix: Path | None, stream: str):
    if prefix is None:
        return tempfile.TemporaryFile()
    return open(f"{prefix}.{stream}", "w+b")


def interpreter_floor(runs: int = 5) -> Measured:
    """Median cost of starting the interpreter and importing nothing."""
    samples = [run_measured([sys.executable, "-c", "pass"]) for _ in range(runs)]
    return Measured(statistics.median(s.wall_s for s in samples),
                    max(s.peak_rss_bytes for s in samples))


def monitor_check(config: Path, log_prefix: Path) -> Measured:
    env = dict(os.environ)
    for name in ("no_proxy", "NO_PROXY"):   # never route the fleet through a proxy
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    command = [sys.executable, "-m", "monitor", "check", "--config", str(config)]
    return run_measured(command, log_prefix, cwd=REPO_ROOT, env=env)


# --------------------------------------------------------------------------
# Fleet set-up
# --------------------------------------------------------------------------

def write_targets(work: Path, base_url: str, paths: list[str]) -> Path:
    lines = ["[monitor]", f'database = "sqlite:///{DB_NAME}"', 'snapshots = "snapshots"',
             'interval = "15m"', ""]
    for path in paths:
        lines += ["[[targets]]", f'name = "post-{Path(path).stem}"',
                  f'url = "{base_url}{path}"', ""]
    config = work / "targets.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def edit_pages(site: Path, server: static_server.NginxServer, total: int) -> list[int]:
    """Edit EDIT_FRACTION of the pages and check that every ETag moved."""
    chosen = sitegen.pages_to_edit(total, EDIT_FRACTION, seed=SEED)
    paths = [f"/posts/{sitegen.page_name(i, total)}" for i in chosen]
    before = static_server.etags(server.port, paths)
    sitegen.edit_site(site, total, EDIT_FRACTION, seed=SEED)
    after = static_server.etags(server.port, paths)
    stale = [p for p in paths if before[p] == after[p]]
    if stale:
        raise HarnessError(f"ETag unchanged after edit for {len(stale)} pages, e.g. {stale[0]}")
    return chosen


def stored_bytes(work: Path) -> dict[str, int]:
    database = sum(p.stat().st_size for p in (work / (DB_NAME + s) for s in DB_SUFFIXES)
                   if p.is_file())
    snapshots = sum(p.stat().st_size for p in (work / "snapshots").rglob("*") if p.is_file())
    return {"database": database, "snapshots": snapshots, "total": database + snapshots}


def page_bytes(site: Path) -> list[int]:
    return [p.stat().st_size for p in (site / "posts").glob("*.html")]


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------

def run_passes(site: Path, work: Path, server: static_server.NginxServer,
               config: Path, total: int, log) -> tuple[list[PassResult], list[int]]:
    results, edited = [], []
    for name in ("baseline", "unchanged", "edited-10%"):
        if name == "edited-10%":
            edited = edit_pages(site, server, total)
            log(f"edited {len(edited)} pages")
        log(f"pass {name} ...")
        before = server.requests_served()
        measured = monitor_check(config, work / "logs" / name)
        after = server.requests_served()
        requests = None if before is None else after - before - 1  # minus the status request
        results.append(PassResult(name, measured.wall_s, measured.peak_rss_bytes, requests,
                                  measured.wall_s / REFERENCE_URLWATCH_S))
        log(f"pass {name}: {measured.wall_s:.3f} s, {measured.peak_rss_bytes / MB:.1f} MB")
    return results, edited


def evaluate(passes: list[PassResult], stored: dict[str, int]) -> list[Target]:
    by_name = {p.name: p for p in passes}
    return [
        Target("unchanged pass <= 0.2x reference", by_name["unchanged"].wall_s,
               round(0.2 * REFERENCE_URLWATCH_S, 3), "s"),
        Target("10%-edited pass <= 0.5x reference", by_name["edited-10%"].wall_s,
               round(0.5 * REFERENCE_URLWATCH_S, 3), "s"),
        Target("peak RSS (max over passes) <= 100 MB",
               max(p.peak_rss_bytes for p in passes) / MB, 100, "MB"),
        Target("stored bytes <= 18 MB", stored["total"] / MB, 18, "MB"),
    ]


def benchmark(root: Path, posts: int, log) -> dict:
    nginx = static_server.find_nginx()
    site, work, state = root / "site", root / "work", root / "nginx"
    for directory in (site, work / "logs", state):
        directory.mkdir(parents=True, exist_ok=True)

    log("measuring interpreter floor ...")
    floor = interpreter_floor()
    log(f"generating {posts} pages ...")
    paths = sitegen.write_site(site, posts, seed=SEED)
    sizes = page_bytes(site)

    with static_server.NginxServer(nginx, site, state) as server:
        static_server.check_conditional_get(server.port, paths[0])
        log(f"nginx serving on {server.base_url}")
        config = write_targets(work, server.base_url, paths)
        passes, edited = run_passes(site, work, server, config, posts, log)

    stored = stored_bytes(work)
    return {
        "posts": posts,
        "page_bytes": {"total": sum(sizes), "mean": round(statistics.mean(sizes)),
                       "min": min(sizes), "max": max(sizes)},
        "edited_pages": len(edited),
        "floor": {"command": "python -c pass", "wall_s": floor.wall_s,
                  "peak_rss_bytes": floor.peak_rss_bytes},
        "reference_urlwatch_s": REFERENCE_URLWATCH_S,
        "reference_note": REFERENCE_NOTE,
        "passes": [asdict(p) for p in passes],
        "stored_bytes": stored,
        "targets": [{**asdict(t), "met": t.met} for t in evaluate(passes, stored)],
    }


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def format_report(report: dict) -> str:
    pages, floor, stored = report["page_bytes"], report["floor"], report["stored_bytes"]
    lines = [
        f"monitor check benchmark: {report['posts']} pages, mean {pages['mean'] / 1000:.1f} KB "
        f"(total {pages['total'] / MB:.1f} MB); {report['edited_pages']} edited before pass 3",
        f"interpreter floor (python -c pass): {floor['wall_s']:.3f} s, "
        f"{floor['peak_rss_bytes'] / MB:.1f} MB peak RSS (median of 5)",
        "",
        f"{'pass':<12} {'wall s':>8} {'peak RSS MB':>12} {'vs ref*':>8} {'requests':>9}",
    ]
    for p in report["passes"]:
        requests = "n/a" if p["requests"] is None else str(p["requests"])
        lines.append(f"{p['name']:<12} {p['wall_s']:>8.3f} {p['peak_rss_bytes'] / MB:>12.1f} "
                     f"{p['ratio_to_reference']:>7.2f}x {requests:>9}")
    lines += [
        f"* ratio to {report['reference_urlwatch_s']} s: {report['reference_note']}",
        "",
        f"stored: database {stored['database'] / MB:.2f} MB + snapshots "
        f"{stored['snapshots'] / MB:.2f} MB = {stored['total'] / MB:.2f} MB",
        "",
        f"{'target':<40} {'measured':>10} {'limit':>10}",
    ]
    for t in report["targets"]:
        value, limit = f"{t['value']:.2f} {t['unit']}", f"{t['limit']:.2f} {t['unit']}"
        lines.append(f"{t['label']:<40} {value:>10} {limit:>10}  {'PASS' if t['met'] else 'MISS'}")
    lines += [f"warning: pass {p['name']} made {p['requests']} requests for {report['posts']} targets"
              for p in report["passes"]
              if p["requests"] is not None and p["requests"] < report["posts"]]
    if report["posts"] != REFERENCE_POSTS:
        lines.append(f"note: the targets were set for {REFERENCE_POSTS} pages; "
                     f"with {report['posts']} they are indicative only")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=REFERENCE_POSTS,
                        help="number of pages in the fleet (default %(default)s)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build everything in DIR (must be empty or absent) and keep it")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    if args.posts < 1:
        parser.error("--posts must be at least 1")
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep directory {args.keep} is not empty")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if static_server.find_nginx() is None:
        print("nginx not found (looked on PATH and at /usr/sbin/nginx); it is needed to serve "
              "the pages. Install it, e.g. the Debian package nginx-light, and retry.",
              file=sys.stderr)
        return 2

    def log(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    root = args.keep or Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        report = benchmark(root.resolve(), args.posts, log)
    except (HarnessError, static_server.ServerError) as error:
        print(f"benchmark harness failed: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if not args.json:
        print(format_report(report))
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
