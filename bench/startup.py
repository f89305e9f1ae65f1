"""Benchmark the cost of starting `monitor`: an empty `monitor check` (no targets), as a whole process.

In a temporary directory with a config that lists no targets, it first runs `monitor check` once
(creating the database), then runs, interleaved, N times each:

  floor        python -c pass: starting the interpreter and importing nothing
  empty check  python -m monitor check: config, database (schema already current), nothing to do

and reports the median wall time of each (hyperfine-style: warm file cache, repeated runs, the
median so one descheduled run does not move it), the empty check's ratio to the floor in the same
run, and the modules the empty check imports. A measurement, not a test: the exit status is 0
whether or not the target is met (non-zero only when a run fails).

Usage: python bench/startup.py [--runs 21] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.25  # the limit for an empty `monitor check`
CONFIG = '[monitor]\ndatabase = "sqlite:///monitor.db"\nsnapshots = "snapshots"\n'
# Heavy packages an empty check has no use for: reported when one is imported anyway.
UNNEEDED = ("alembic", "aiohttp", "httpx", "lxml", "bs4", "uvloop", "diff_match_patch", "zstandard", "fastapi",
            "uvicorn", "apscheduler", "soupsieve")


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` exited with status {result.returncode}:\n{result.stderr[-3000:]}")
    return wall


def imported(cwd: Path) -> list[str]:
    """The top-level packages an empty check imports (from `python -X importtime`)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "monitor", "check"], cwd=cwd,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return sorted(names)


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="monitor-startup-") as tmp:
        work = Path(tmp)
        (work / "targets.toml").write_text(CONFIG, encoding="utf-8")
        floor_cmd = [sys.executable, "-c", "pass"]
        check_cmd = [sys.executable, "-m", "monitor", "check"]
        timed(check_cmd, work)  # creates the database and its schema; also warms the file cache
        floor, check = [], []
        for _ in range(runs):
            floor.append(timed(floor_cmd, work))
            check.append(timed(check_cmd, work))
        modules = imported(work)
    floor_s, check_s = statistics.median(floor), statistics.median(check)
    return {"runs": runs, "floor_s": floor_s, "empty_check_s": check_s, "ratio_to_floor": check_s / floor_s,
            "empty_check_min_s": min(check), "empty_check_max_s": max(check), "target_s": TARGET_S,
            "met": check_s <= TARGET_S, "unneeded_imports": [m for m in modules if m in UNNEEDED]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    report = measure(args.runs)
    if not args.json:
        print(f"python -c pass        median {report['floor_s'] * 1000:7.1f} ms  ({args.runs} runs)")
        print(f"monitor check (empty) median {report['empty_check_s'] * 1000:7.1f} ms  "
              f"(min {report['empty_check_min_s'] * 1000:.1f}, max {report['empty_check_max_s'] * 1000:.1f}); "
              f"{report['ratio_to_floor']:.1f}x the floor")
        print(f"target: empty check <= {TARGET_S * 1000:.0f} ms: {'PASS' if report['met'] else 'MISS'}")
        if report["unneeded_imports"]:
            print("imported though an empty check does not need them: " + ", ".join(report["unneeded_imports"]))
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
