"""Every hostile answer a server can give costs one failed check with a clear error — with bounded
memory, nothing stored, and the healthy targets beside it checked as usual.

One real `monitor check` process runs over all the cases at once (each case a target on a raw
loopback server) plus healthy targets on another server; its peak memory is its own VmHWM.
"""
from __future__ import annotations

import json

import pytest

from hostile_cases import HEALTHY, cases, names_of, run_pass

CASES = cases()
NAMES = names_of(CASES)
PEAK_RSS_MB = 250  # bounded, not gigabytes: the 150 MB target is bench/hostile_pass.py's (147 MB there)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """One `monitor check` over every case: targets by name, peak RSS in MB, output, config."""
    return run_pass(CASES, tmp_path_factory.mktemp("hostile"))


def test_the_pass_completes_with_bounded_memory(checked):
    out = checked["output"]
    print(f"peak RSS of the pass: {checked['rss_mb']:.0f} MB")
    assert f"checked {len(CASES) + len(HEALTHY)} targets" in out, out[-2000:]
    assert "Traceback" not in out and "internal error" not in out.lower(), out
    assert checked["rss_mb"] < PEAK_RSS_MB, f"peak RSS {checked['rss_mb']:.0f} MB"


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_targets_beside_hostile_ones_are_checked(checked, name):
    target = checked["targets"][name]
    assert target["status"] == "ok" and target["versions"] == 1, target


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_answer(checked, workspace, case):
    expected = CASES[case][1]
    target = checked["targets"][NAMES[case]]
    if isinstance(expected, tuple):  # an odd but readable page: read as a browser would
        assert target["status"] == "ok", target["last_error"]
        workspace.config = checked["config"]
        blocks = workspace.json("show", NAMES[case])["blocks"]
        assert any(expected[1] in b for b in blocks), blocks
        assert "root:" not in json.dumps(blocks)  # never an external entity's contents
        return
    assert target["status"] == "error" and target["versions"] == 0, (target["status"], target["last_error"])
    error = target["last_error"]
    assert expected in error, error
    assert "Traceback" not in error and "internal error" not in error.lower()
