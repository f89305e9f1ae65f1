"""Where a `monitor check` pass spends its CPU: the three passes of check_pass.py, each sampled by py-spy.

Builds the same fleet as check_pass.py (N generated ~50 KB posts served by a private nginx), runs the
baseline, unchanged and 10%-edited passes as whole processes under `py-spy record --subprocesses`
(worker processes and threads included), and sorts every sample into one of a few parts of the work
by the frames on its stack. Prints, per pass, each part's share of the samples. py-spy counts a thread
that is waiting for a CPU or for the disk (fsync) as busy, so on a loaded machine the shares are of
busy time rather than strictly CPU; the writes' fsync waits are reported apart.

Needs py-spy (`pip install py-spy`) and nginx. Usage: python bench/profile_pass.py [--posts 1000] [--rate 200]
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import check_pass
import sitegen
import static_server

# (part, substrings of a frame that put a sample there), tried from the innermost frame outwards.
PARTS = [
    ("disk: fsync of snapshot files (waiting)", ("files.py:17",)),
    ("extraction (lxml parse, main-content walk)", ("monitor/extract.py", "lxml/", "monitor/volatile.py")),
    ("word diff and classification", ("monitor/diff.py", "diff_match_patch", "monitor/detect.py", "monitor/words.py")),
    ("snapshots (zstd, files)", ("monitor/snapshots.py", "zstandard", "monitor/files.py")),
    ("database (SQLAlchemy, SQLite)", ("sqlalchemy/", "monitor/store.py", "sqlite3")),
    ("HTTP: aiohttp (wire, parser, socket writes)", ("aiohttp/", "yarl/", "multidict/")),
    ("HTTP: httpx API (client, URL, headers)", ("httpx/", "httpx_aiohttp/", "monitor/transport.py")),
    ("HTTP: monitor's fetch (limits, policy, decoding)", ("monitor/fetch.py", "monitor/decoding.py",
                                                          "monitor/addresses.py", "ipaddress.py")),
    ("config (pydantic)", ("monitor/config.py", "pydantic")),
    ("event loop (uvloop, asyncio)", ("asyncio/", "uvloop", "runners.py")),
]
IMPORTS = "start-up: imports"
OTHER = "other (check pipeline, gc, ...)"


def part(frames: list[str]) -> str:
    if frames and "files.py:17" in frames[-1]:
        return PARTS[0][0]
    if any("importlib._bootstrap" in f for f in frames):
        return IMPORTS
    for frame in reversed(frames):
        for name, patterns in PARTS[1:]:
            if any(p in frame for p in patterns):
                return name
    return OTHER


def shares(raw: Path) -> tuple[int, collections.Counter]:
    counts: collections.Counter = collections.Counter()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[part(stack.split(";"))] += int(n)
    return sum(counts.values()), counts


def profile(py_spy: str, rate: int, out: Path, config: Path) -> None:
    command = [py_spy, "record", "--subprocesses", "--nonblocking", "-r", str(rate), "-f", "raw", "-o", str(out),
               "--", sys.executable, "-m", "monitor", "check", "--config", str(config)]
    result = subprocess.run(command, cwd=check_pass.REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, env=check_pass.child_env())
    if result.returncode != 0 or not out.exists():
        raise check_pass.HarnessError(f"py-spy run failed ({result.returncode}):\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=check_pass.REFERENCE_POSTS)
    parser.add_argument("--rate", type=int, default=200, help="samples per second (default %(default)s)")
    args = parser.parse_args(argv)
    py_spy, nginx = shutil.which("py-spy"), static_server.find_nginx()
    if not py_spy or not nginx:
        print("needs py-spy (pip install py-spy) and nginx", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="monitor-profile-"))
    try:
        site, work, state = root / "site", root / "work", root / "nginx"
        for directory in (work, state):
            directory.mkdir(parents=True)
        paths = sitegen.write_site(site, args.posts, seed=check_pass.SEED)
        with static_server.NginxServer(nginx, site, state) as server:
            config = check_pass.write_targets(work, server.base_url, paths)
            for name in check_pass.PASSES:
                if name == "edited-10%":
                    check_pass.edit_pages(site, server, args.posts)
                raw = work / f"{name}.txt"
                profile(py_spy, args.rate, raw, config)
                total, counts = shares(raw)
                print(f"{name}: {total} samples ({total / args.rate:.2f} s busy, all processes and threads)")
                for label, n in counts.most_common():
                    print(f"  {n / total * 100:5.1f}%  {label}")
    except (check_pass.HarnessError, static_server.ServerError) as error:
        print(f"profile harness failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
