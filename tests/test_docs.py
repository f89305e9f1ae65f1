"""The README is a short front page whose links lead to the reference in docs/, and its test
command is the one CI runs."""
from __future__ import annotations

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_front_page_is_short_and_every_link_leads_somewhere():
    assert len(README.encode()) < 8000
    links = re.findall(r"\]\((docs/[^)#]+)\)", README)
    assert links, "the front page points to the reference"
    assert all((ROOT / link).is_file() for link in links), links
    assert sorted(links) == sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))


def test_the_readme_test_command_is_what_ci_runs():
    assert "bash tests/run.sh" in README
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec bash tests/run.sh")
