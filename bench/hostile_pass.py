"""One `monitor check` over every hostile case of the test suite plus 8 healthy targets.

Reports the pass's wall time and peak RSS (the monitor process's own VmHWM), how many
hostile cases ended as the expected failed check, and whether every healthy target was checked
without timing out. Targets: peak RSS <= 150 MB, no healthy target times out.

    python bench/hostile_pass.py [--only SUBSTRING] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Page, PageServer  # noqa: E402
from hostile_cases import ENCODINGS, RawServer, bomb, cases, run_measured  # noqa: E402

CONFIG = """
[monitor]
retries = 0
calibrate = false
timeout = "5s"
max_bytes = 1000000
max_redirects = 5
concurrency = 16
per_host = 16
"""


def run(table: dict, folder: Path) -> dict:
    raw, pages = RawServer(table), PageServer()
    healthy = [f"healthy{i}" for i in range(8)]
    names = {case: f"case{i:03d}" for i, case in enumerate(table)}
    text = CONFIG
    for case, name in names.items():
        text += f'\n[[targets]]\nname = "{name}"\nurl = "{raw.url(case)}"\n'
    for name in healthy:
        pages.set(f"/{name}", Page(f"<html><body><article><p>Healthy words of {name}.</p></article></body></html>"))
        text += f'\n[[targets]]\nname = "{name}"\nurl = "{pages.url("/" + name)}"\n'
    config = folder / "targets.toml"
    config.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    _, peak_mb = run_measured(["check", "--config", str(config)], env, folder)
    wall = time.perf_counter() - started
    listing = json.loads(subprocess.run([sys.executable, "-m", "monitor", "targets", "--json", "--config", str(config)],
                                        capture_output=True, text=True, env=env, check=True).stdout)
    raw.close()
    pages.close()
    by_name = {t["name"]: t for t in listing}
    expected_ok = sum(1 for case, name in names.items() if
                      (by_name[name]["status"] == "ok") == isinstance(table[case][1], tuple))
    healthy_ok = sum(1 for n in healthy if by_name[n]["status"] == "ok")
    return {"cases": len(table), "as_expected": expected_ok, "healthy_ok": healthy_ok, "wall_s": round(wall, 1),
            "peak_rss_mb": round(peak_mb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="only the cases whose name contains this")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    table = {k: v for k, v in cases().items() if not args.only or args.only in k}
    for encoding in ENCODINGS + ["deflate-raw"]:
        bomb(encoding)
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(run(table, Path(folder))))


if __name__ == "__main__":
    main()
