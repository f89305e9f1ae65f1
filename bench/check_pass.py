"""Benchmark one `monitor check` pass over a fleet of local blog-post pages.

Generates N WordPress-like pages (~50 KB each), serves them with a private
nginx on 127.0.0.1, then runs three passes. In each, urlwatch 2.29 (the
reference, installed into a cached virtualenv under bench/.cache/) and then
`monitor check` run as separate processes over the identical fleet state:

  baseline    first pass, every page is new
  unchanged   the same pages again
  edited-10%  after rewriting 10% of the pages with a real content edit

For each pass it reports both tools' wall time, CPU time and peak RSS and the
ratio monitor/urlwatch; afterwards the bytes each stored. This is a
measurement, not a test: the exit status is 0 whether or not the targets are
met, and non-zero only when the harness itself fails.

Usage: python bench/check_pass.py [--posts 1000] [--keep DIR] [--json] [--no-urlwatch]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
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

URLWATCH_VERSION = "2.29"
URLWATCH_VENV = Path(__file__).resolve().parent / ".cache" / "urlwatch-venv"
# urlwatch's defaults apply to everything not set here: 10 worker threads,
# conditional requests (If-None-Match with the stored ETag, If-Modified-Since),
# the stdout reporter with diffs of changed pages. The harness sends stdout to
# a log file.
URLWATCH_CONFIG = """\
report:
  stdout:
    enabled: true
    color: false
"""
# One line per job in the summary of urlwatch's stdout report.
URLWATCH_REPORT_LINE = re.compile(r"^\d+\. (NEW|CHANGED|UNCHANGED|ERROR): ", re.MULTILINE)

# The project's issue: "urlwatch 2.29 takes ~3.6 s per pass on such a fleet".
# Used as the reference only when urlwatch is not measured.
ISSUE_URLWATCH_S = 3.6
TARGET_FACTORS = {"unchanged": 0.2, "edited-10%": 0.5}   # monitor pass <= factor x reference
BASELINE_FACTOR = 1.0             # the first pass <= this x urlwatch's (only when urlwatch is measured)
STORED_SHARE = 1 / 3              # bytes stored <= this share of urlwatch's cache
# Without urlwatch to compare with, the limits the project set before urlwatch was measured.
FALLBACK_RSS_MB, FALLBACK_STORED_MB = 100, 18

PASSES = ("baseline", "unchanged", "edited-10%")
REFERENCE_POSTS = 1000            # fleet size the targets were set for
EDIT_FRACTION = 0.10
SEED = 1
MB = 1_000_000                    # decimal megabytes throughout

REPO_ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "monitor.db"
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


class HarnessError(RuntimeError):
    pass


class UrlwatchUnavailable(RuntimeError):
    pass


@dataclass
class Measured:
    wall_s: float
    peak_rss_bytes: int
    requests: int | None = None   # as counted by nginx, when it has stub_status
    cpu_s: float | None = None    # user + system CPU of the process and the children it waited for


@dataclass
class Tool:
    """A command to time, run in `cwd` with `env`."""
    command: list[str]
    cwd: Path
    env: dict[str, str]


@dataclass
class PassResult:
    name: str
    monitor: Measured
    urlwatch: Measured | None     # None when urlwatch is not measured
    reference_s: float            # urlwatch's wall time for this pass, else ISSUE_URLWATCH_S
    ratio_to_reference: float     # monitor / reference


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
    return Measured(wall, rss, cpu_s=usage.ru_utime + usage.ru_stime)


def _output_file(prefix: Path | None, stream: str):
    if prefix is None:
        return tempfile.TemporaryFile()
    return open(f"{prefix}.{stream}", "w+b")


def interpreter_floor(runs: int = 5) -> Measured:
    """Median cost of starting the interpreter and importing nothing."""
    samples = [run_measured([sys.executable, "-c", "pass"]) for _ in range(runs)]
    return Measured(statistics.median(s.wall_s for s in samples),
                    max(s.peak_rss_bytes for s in samples))


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    for name in ("no_proxy", "NO_PROXY"):   # never route the fleet through a proxy
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    return env


def run_pass(tool: Tool, server: static_server.NginxServer, log_prefix: Path) -> Measured:
    """Time one run of `tool`, counting the requests nginx served meanwhile."""
    before = server.requests_served()
    measured = run_measured(tool.command, log_prefix, cwd=tool.cwd, env=tool.env)
    if before is not None:
        measured.requests = server.requests_served() - before - 1   # minus the status request
    return measured


# --------------------------------------------------------------------------
# urlwatch, the reference
# --------------------------------------------------------------------------

def install_urlwatch(log) -> Path:
    """The urlwatch executable in the cached virtualenv, installed there if needed."""
    executable = URLWATCH_VENV / "bin" / "urlwatch"
    if urlwatch_version(executable) == URLWATCH_VERSION:
        return executable
    spec = f"urlwatch=={URLWATCH_VERSION}"
    log(f"installing {spec} into {URLWATCH_VENV} ...")
    for command in ([sys.executable, "-m", "venv", str(URLWATCH_VENV)],
                    [str(URLWATCH_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                     "--disable-pip-version-check", spec]):
        try:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True)
        except OSError as error:
            raise UrlwatchUnavailable(f"{command[0]}: {error}") from None
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()[-3000:]
            raise UrlwatchUnavailable(f"`{' '.join(command)}` exited with status "
                                      f"{result.returncode}\n{output}")
    version = urlwatch_version(executable)
    if version != URLWATCH_VERSION:
        raise UrlwatchUnavailable(f"after installing {spec}, `urlwatch --version` says {version!r}")
    return executable


def urlwatch_version(executable: Path) -> str | None:
    try:
        result = subprocess.run([str(executable), "--version"], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = result.stdout.split()               # "urlwatch 2.29"
    return words[-1] if result.returncode == 0 and words else None


def urlwatch_tool(executable: Path, home: Path, base_url: str, paths: list[str]) -> Tool:
    """urlwatch with its own job list (one job per page), config and cache in `home`.

    HOME and the XDG directories point into `home` as well, so urlwatch never
    reads or migrates the user's own ~/.urlwatch.
    """
    jobs = [f"name: {json.dumps(target_name(path))}\nurl: {json.dumps(base_url + path)}\n"
            for path in paths]
    (home / "urls.yaml").write_text("---\n".join(jobs), encoding="utf-8")
    (home / "urlwatch.yaml").write_text(URLWATCH_CONFIG, encoding="utf-8")
    command = [str(executable), "--urls", str(home / "urls.yaml"),
               "--config", str(home / "urlwatch.yaml"), "--cache", str(home / "cache.db")]
    return Tool(command, home, child_env(HOME=str(home), XDG_CONFIG_HOME=str(home),
                                         XDG_CACHE_HOME=str(home)))


def check_urlwatch_pass(name: str, measured: Measured, stdout: Path,
                        expected: dict[str, int], posts: int) -> None:
    """Raise HarnessError unless urlwatch fetched every page and reported as expected.

    urlwatch exits 0 even when jobs fail, so its report is checked: the
    summary has one "NN. VERB: name" line per job it reports.
    """
    if measured.requests is not None and measured.requests < posts:
        raise HarnessError(f"urlwatch pass {name} made {measured.requests} requests "
                           f"for {posts} jobs")
    report = stdout.read_text(encoding="utf-8", errors="replace")
    found = dict(collections.Counter(URLWATCH_REPORT_LINE.findall(report)))
    if found != expected:
        error = re.search(r"^ERROR: ", report, re.MULTILINE)    # first error's details
        excerpt = report[error.start():][:3000] if error else report[-3000:]
        raise HarnessError(f"urlwatch pass {name}: expected {expected} in its report, "
                           f"found {found}\n--- urlwatch stdout (excerpt) ---\n{excerpt}")


# --------------------------------------------------------------------------
# Fleet set-up
# --------------------------------------------------------------------------

def target_name(path: str) -> str:
    return f"post-{Path(path).stem}"


def write_targets(work: Path, base_url: str, paths: list[str]) -> Path:
    lines = ["[monitor]", f'database = "sqlite:///{DB_NAME}"', 'snapshots = "snapshots"',
             'interval = "15m"', ""]
    for path in paths:
        lines += ["[[targets]]", f'name = "{target_name(path)}"',
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

def run_passes(site: Path, logs: Path, server: static_server.NginxServer, monitor: Tool,
               urlwatch: Tool | None, total: int, log) -> tuple[list[PassResult], list[int]]:
    """Each pass: urlwatch, then monitor, over the same fleet state."""
    results, edited = [], []
    for name in PASSES:
        if name == "edited-10%":
            edited = edit_pages(site, server, total)
            log(f"edited {len(edited)} pages")
        reference = None
        if urlwatch is not None:
            log(f"urlwatch pass {name} ...")
            reference = run_pass(urlwatch, server, logs / f"urlwatch-{name}")
            expected = {"baseline": {"NEW": total}, "unchanged": {},
                        "edited-10%": {"CHANGED": len(edited)}}[name]
            check_urlwatch_pass(name, reference, logs / f"urlwatch-{name}.stdout", expected, total)
            log(f"urlwatch pass {name}: {reference.wall_s:.3f} s, "
                f"{reference.peak_rss_bytes / MB:.1f} MB")
        log(f"monitor pass {name} ...")
        measured = run_pass(monitor, server, logs / f"monitor-{name}")
        log(f"monitor pass {name}: {measured.wall_s:.3f} s, {measured.peak_rss_bytes / MB:.1f} MB")
        reference_s = reference.wall_s if reference else ISSUE_URLWATCH_S
        results.append(PassResult(name, measured, reference, reference_s,
                                  measured.wall_s / reference_s))
    return results, edited


def evaluate(passes: list[PassResult], stored: dict[str, int], cache_bytes: int | None) -> list[Target]:
    """The targets; with urlwatch measured (`cache_bytes` its cache's size), each is relative to
    urlwatch in the same run: time per pass, peak RSS in every pass, bytes stored."""
    by_name = {p.name: p for p in passes}
    measured = cache_bytes is not None
    reference = "urlwatch" if measured else f"{ISSUE_URLWATCH_S} s (issue)"
    factors = {"baseline": BASELINE_FACTOR, **TARGET_FACTORS} if measured else TARGET_FACTORS
    targets = [Target(f"{name}: monitor <= {factor}x {reference}", by_name[name].monitor.wall_s,
                      round(factor * by_name[name].reference_s, 3), "s") for name, factor in factors.items()]
    if not measured:
        return targets + [
            Target(f"peak RSS (max over passes) <= {FALLBACK_RSS_MB} MB",
                   max(p.monitor.peak_rss_bytes for p in passes) / MB, FALLBACK_RSS_MB, "MB"),
            Target(f"stored bytes <= {FALLBACK_STORED_MB} MB", stored["total"] / MB, FALLBACK_STORED_MB, "MB")]
    worst = max(passes, key=lambda p: p.monitor.peak_rss_bytes / p.urlwatch.peak_rss_bytes)
    return targets + [
        Target(f"peak RSS <= urlwatch's in every pass (worst: {worst.name})",
               worst.monitor.peak_rss_bytes / MB, worst.urlwatch.peak_rss_bytes / MB, "MB"),
        Target("stored bytes <= 1/3 of urlwatch's cache", stored["total"] / MB,
               round(STORED_SHARE * cache_bytes / MB, 2), "MB"),
    ]


def benchmark(root: Path, posts: int, urlwatch_executable: Path | None,
              reference_note: str, log) -> dict:
    nginx = static_server.find_nginx()
    site, work, state, home = root / "site", root / "work", root / "nginx", root / "urlwatch"
    for directory in (site, work / "logs", state, home):
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
        monitor = Tool([sys.executable, "-m", "monitor", "check", "--config", str(config)],
                       REPO_ROOT, child_env())
        urlwatch = (urlwatch_tool(urlwatch_executable, home, server.base_url, paths)
                    if urlwatch_executable else None)
        passes, edited = run_passes(site, work / "logs", server, monitor, urlwatch, posts, log)

    stored = stored_bytes(work)
    measured = urlwatch is not None
    cache = sum(p.stat().st_size for p in home.glob("cache.db*")) if measured else None
    return {
        "posts": posts,
        "page_bytes": {"total": sum(sizes), "mean": round(statistics.mean(sizes)),
                       "min": min(sizes), "max": max(sizes)},
        "edited_pages": len(edited),
        "floor": {"command": "python -c pass", "wall_s": floor.wall_s,
                  "peak_rss_bytes": floor.peak_rss_bytes},
        "reference": {"urlwatch_measured": measured, "urlwatch_version": URLWATCH_VERSION,
                      "note": reference_note},
        "issue_figures": {
            "urlwatch_pass_s": ISSUE_URLWATCH_S,
            "unchanged_limit_s": round(TARGET_FACTORS["unchanged"] * ISSUE_URLWATCH_S, 3),
            "edited_limit_s": round(TARGET_FACTORS["edited-10%"] * ISSUE_URLWATCH_S, 3)},
        "passes": [asdict(p) for p in passes],
        "stored_bytes": stored,
        "urlwatch_cache_bytes": cache,
        "targets": [{**asdict(t), "met": t.met} for t in evaluate(passes, stored, cache)],
    }


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def format_report(report: dict) -> str:
    pages, floor, stored = report["page_bytes"], report["floor"], report["stored_bytes"]
    measured, issue = report["reference"]["urlwatch_measured"], report["issue_figures"]
    width = max(len(t["label"]) for t in report["targets"])

    def count(requests: int | None) -> str:
        return "-" if requests is None else str(requests)

    lines = [
        f"monitor check benchmark: {report['posts']} pages, mean {pages['mean'] / 1000:.1f} KB "
        f"(total {pages['total'] / MB:.1f} MB); {report['edited_pages']} edited before pass 3",
        f"interpreter floor (python -c pass): {floor['wall_s']:.3f} s, "
        f"{floor['peak_rss_bytes'] / MB:.1f} MB peak RSS (median of 5)",
        f"reference: {report['reference']['note']}",
        "",
        f"{'pass':<12} {'monitor s':>10} {'urlwatch s':>11} {'monitor/urlwatch':>17} "
        f"{'monitor MB':>11} {'urlwatch MB':>12} {'requests m/u':>13} {'CPU s m/u':>12}",
    ]
    for p in report["passes"]:
        monitor, urlwatch = p["monitor"], p["urlwatch"] or {}
        reference = f"{p['reference_s']:.3f}" + ("" if urlwatch else "*")
        urlwatch_rss = f"{urlwatch['peak_rss_bytes'] / MB:.1f}" if urlwatch else "n/a"
        requests = f"{count(monitor['requests'])}/{count(urlwatch.get('requests'))}"
        cpu = f"{monitor['cpu_s']:.2f}/" + (f"{urlwatch['cpu_s']:.2f}" if urlwatch else "-")
        lines.append(f"{p['name']:<12} {monitor['wall_s']:>10.3f} {reference:>11} "
                     f"{p['ratio_to_reference']:>16.2f}x {monitor['peak_rss_bytes'] / MB:>11.1f} "
                     f"{urlwatch_rss:>12} {requests:>13} {cpu:>12}")
    if not measured:
        lines.append(f"* not measured: the issue's {issue['urlwatch_pass_s']} s, "
                     f"used for every pass")
    lines += [
        "",
        f"stored by monitor: database {stored['database'] / MB:.2f} MB + snapshots "
        f"{stored['snapshots'] / MB:.2f} MB = {stored['total'] / MB:.2f} MB"
        + (f" (urlwatch's cache: {report['urlwatch_cache_bytes'] / MB:.2f} MB)"
           if measured else ""),
        "",
        "time targets: monitor's pass time as a ratio to "
        + ("urlwatch's time for the same pass, measured above"
           if measured else f"the issue's {issue['urlwatch_pass_s']} s (urlwatch NOT measured)"),
        f"{'target':<{width}} {'measured':>10} {'limit':>10}",
    ]
    for t in report["targets"]:
        value, limit = f"{t['value']:.2f} {t['unit']}", f"{t['limit']:.2f} {t['unit']}"
        lines.append(f"{t['label']:<{width}} {value:>10} {limit:>10}  "
                     f"{'PASS' if t['met'] else 'MISS'}")
    if measured:
        lines.append(f"for context, the issue's absolute figures: unchanged <= "
                     f"{issue['unchanged_limit_s']:.2f} s, edited-10% <= "
                     f"{issue['edited_limit_s']:.2f} s (from its quoted "
                     f"{issue['urlwatch_pass_s']} s per urlwatch pass)")
    for p in report["passes"]:
        requests = p["monitor"]["requests"]
        if requests is not None and requests < report["posts"]:
            lines.append(f"warning: monitor pass {p['name']} made {requests} requests "
                         f"for {report['posts']} targets")
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
    parser.add_argument("--urlwatch", action=argparse.BooleanOptionalAction, default=True,
                        help=f"measure urlwatch {URLWATCH_VERSION} as the reference, installing it "
                             f"into bench/.cache/ if needed (default); with --no-urlwatch, use the "
                             f"issue's {ISSUE_URLWATCH_S} s figure instead")
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

    urlwatch, why_not = None, "skipped with --no-urlwatch"
    if args.urlwatch:
        try:
            urlwatch = install_urlwatch(log)
        except UrlwatchUnavailable as error:
            why_not = f"installing urlwatch {URLWATCH_VERSION} failed"
            print(f"warning: {why_not}, so it is not measured; the targets fall back to the "
                  f"issue's {ISSUE_URLWATCH_S} s figure. Reason: {error}", file=sys.stderr)
    note = (f"urlwatch {URLWATCH_VERSION}, measured in this run on the same fleet "
            f"(run just before monitor in each pass, same fleet state)" if urlwatch else
            f"urlwatch NOT measured ({why_not}); the issue's figure of {ISSUE_URLWATCH_S} s "
            f"per urlwatch {URLWATCH_VERSION} pass over such a fleet, used for every pass")

    root = args.keep or Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        report = benchmark(root.resolve(), args.posts, urlwatch, note, log)
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
