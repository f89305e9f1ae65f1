"""One `monitor check` over every hostile case of the test suite plus 8 healthy targets.

Reports the pass's wall time and peak RSS (the monitor process's own VmHWM), how many
hostile cases ended as the expected failed check, and whether every healthy target was checked
without timing out. Targets: peak RSS <= 150 MB, no healthy target times out.

    python bench/hostile_pass.py [--only SUBSTRING] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile_cases import HEALTHY, cases, names_of, run_pass  # noqa: E402


def run(table: dict, folder: Path) -> dict:
    done = run_pass(table, folder)
    by_name = done["targets"]
    expected_ok = sum(1 for case, name in names_of(table).items() if
                      (by_name[name]["status"] == "ok") == isinstance(table[case][1], tuple))
    healthy_ok = sum(1 for n in HEALTHY if by_name[n]["status"] == "ok")
    return {"cases": len(table), "as_expected": expected_ok, "healthy_ok": healthy_ok,
            "wall_s": round(done["wall_s"], 1), "peak_rss_mb": round(done["rss_mb"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="only the cases whose name contains this")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    table = {k: v for k, v in cases().items() if not args.only or args.only in k}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(run(table, Path(folder))))


if __name__ == "__main__":
    main()
