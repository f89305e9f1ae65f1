"""The command line as a user meets it: exit codes, error messages that name the file, the target
and the key, conditional requests, and the reading commands."""
from __future__ import annotations

import os

import blog
from click.testing import CliRunner

from monitor.cli import main

CONFIG = """
[monitor]
retries = 0
calibrate = false

[[targets]]
name = "post"
url = "{url}"
selector = "article .entry-content"
"""


def test_bad_config_exits_2_naming_file_target_and_key(workspace):
    workspace.write_config('[[targets]]\nname = "acme"\nurl = "https://example.org/"\nintervl = "5m"\n')
    result = workspace.run("check", expect=2)
    assert str(workspace.config) in result.stderr
    assert "targets[0] (target 'acme'), key 'intervl': unknown key" in result.stderr
    assert workspace.run("targets", expect=2).stderr == result.stderr


def test_missing_config_exits_2(workspace):
    result = workspace.run("targets", expect=2)
    assert "config file not found" in result.stderr and str(workspace.config) in result.stderr


def test_selector_matching_nothing_is_that_targets_check_error(server, workspace):
    server.set("/post", blog.post())
    server.set("/other", "<html><body><main><p>Other page.</p></main></body></html>")
    workspace.write_config(CONFIG.format(url=server.url("/post")) + """
[[targets]]
name = "other"
url = "{}"
selector = "#does-not-exist"
""".format(server.url("/other")))
    out = workspace.run("check").stdout  # the pass completes: exit 0
    assert "other: ERROR selector '#does-not-exist' matched nothing on the page" in out
    assert "post: v1 first" in out
    assert "1 error, 1 first" in out


def test_unchanged_page_costs_a_conditional_request(server, workspace):
    server.set("/post", blog.post())
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    workspace.run("check")
    workspace.run("check")
    (_, first), (_, second) = server.requests
    assert "If-None-Match" not in first and second["If-None-Match"].startswith('"')
    h = workspace.json("history", "post")
    assert h["checks"][0]["http_status"] == 304 and h["checks"][0]["outcome"] == "unchanged"
    assert h["versions"][0]["times_seen"] == 2
    assert "monitor/" in first["User-Agent"]


def test_unknown_names_and_versions_are_clear_errors(server, workspace):
    server.set("/post", blog.post())
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    assert "no target named 'nope'" in workspace.run("check", "nope", expect=2).stderr
    workspace.run("check")
    assert "no target named 'nope'" in workspace.run("history", "nope", expect=1).stderr
    assert "only one version" in workspace.run("diff", "post", expect=1).stderr
    assert "post has no version 7" in workspace.run("show", "post", "7", expect=1).stderr
    assert "bad version 'x1'" in workspace.run("show", "post", "x1", expect=1).stderr


def test_targets_lists_status_and_counts(server, workspace):
    server.set("/post", blog.post())
    workspace.write_config(CONFIG.format(url=server.url("/post")) + """
[[targets]]
name = "down"
url = "http://127.0.0.1:9/"
""")
    workspace.run("check")
    rows = {r["name"]: r for r in workspace.json("targets")}
    assert rows["post"]["status"] == "ok" and rows["post"]["versions"] == 1
    assert rows["down"]["status"] == "error" and rows["down"]["last_error"].startswith("network error")
    text = workspace.run("targets").stdout
    assert "down" in text and "└ network error" in text

    # A target removed from the config keeps its history and is listed with --all.
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    assert [r["name"] for r in workspace.json("targets")] == ["post"]
    listed = workspace.run("targets", "--all", "--json").stdout
    assert '"down"' in listed


def test_module_entry_point_and_env_config(server, workspace, tmp_path):
    server.set("/post", blog.post())
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    env = dict(os.environ, MONITOR_CONFIG=str(workspace.config))
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run([sys.executable, "-m", "monitor", "check"], capture_output=True, text=True,
                            env=dict(env, PYTHONPATH=str(ROOT)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "checked 1 target: 1 first" in result.stdout


def test_a_pass_shared_by_worker_processes_checks_each_target_once(server, workspace):
    names = [f"p{i}" for i in range(7)]
    for i, name in enumerate(names):
        server.set(f"/{name}", blog.post(blog.PARAGRAPHS[: 3 + i % 3], seed=i))
    workspace.write_config("[monitor]\nretries = 0\ncalibrate = false\nworkers = 3\n" + "".join(
        f'\n[[targets]]\nname = "{n}"\nurl = "{server.url("/" + n)}"\nselector = "article .entry-content"\n'
        for n in names))
    first = workspace.subprocess("check")
    assert first.returncode == 0, first.stderr
    assert "checked 7 targets: 7 first" in first.stdout
    assert sorted(path for path, _ in server.requests) == sorted(f"/{n}" for n in names)

    server.set("/p4", blog.post(blog.PARAGRAPHS[:1], seed=4))
    second = workspace.subprocess("check")
    assert "checked 7 targets: 1 changed, 6 unchanged" in second.stdout
    assert "p4: v2 removed" in second.stdout
    for name in names:
        h = workspace.json("history", name)
        assert len(h["versions"]) == (2 if name == "p4" else 1)
        # each target checked exactly once per pass, by one process
        assert [(c["outcome"], c["count"]) for c in h["checks"]] == [
            ("changed" if name == "p4" else "unchanged", 1), ("first", 1)]


def test_word_counts_agree_between_a_versions_history_and_its_changes(server, workspace):
    """History, the change's stats (web page, API, alerts) and the versions count words one way."""
    before = ["The U.S. agency's cloud — it's 2018-06-18: 3.5% faster, isn't it?", "A second, plain paragraph here.",
              "Closing words of the post."]
    server.set("/post", blog.post(before))
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    workspace.run("check")
    server.set("/post", blog.post([before[0], before[2]]))
    workspace.run("check")
    h = workspace.json("history", "post")
    second, first = h["versions"]  # newest first
    [change] = [c for c in h["changes"] if c["kind"] == "removed"]
    assert (change["stats"]["words_before"], change["stats"]["words_after"]) == (first["words"], second["words"])
    assert first["words"] - second["words"] == change["stats"]["words_removed"] == 5


def test_version_and_options_on_either_side_of_the_command(server, workspace):
    server.set("/post", blog.post())
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    from importlib.metadata import version

    assert workspace.run("--version", expect=0).output.strip() == f"monitor {version('monitor')}"
    # git-style: global options before the command name, or after it.
    before = CliRunner().invoke(main, ["--config", str(workspace.config), "-v", "check"], catch_exceptions=False)
    assert before.exit_code == 0 and "checked 1 target: 1 first" in before.output
    after = workspace.run("check", "-v")
    assert after.exit_code == 0 and "checked 1 target: 1 unchanged" in after.output


def test_history_text_lists_checks_and_no_empty_headings(server, workspace):
    server.set("/post", blog.post())
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    workspace.run("check")
    text = workspace.run("history", "post").output
    assert "status ok, 1 version, 0 changes," in text  # edits only: the first capture is not one
    assert "checks (newest 1):" in text and " first v1 HTTP 200" in text
    workspace.run("check")
    text = workspace.run("history", "post", "--checks", "5").output
    assert " unchanged" in text and " first v1 HTTP 200" in text


def test_check_marks_a_change_that_touches_a_keyword(server, workspace):
    server.set("/post", blog.post())
    workspace.write_config(CONFIG.format(url=server.url("/post")) + 'keywords = ["facial recognition"]\n')
    workspace.run("check")
    server.set("/post", blog.post([p for p in blog.PARAGRAPHS if p != blog.ICE]))
    out = workspace.run("check").output
    assert "post: v2 removed" in out and "[PRIORITY: facial recognition]" in out
    server.set("/post", blog.post([p for p in blog.PARAGRAPHS if p != blog.ICE][:-1]))
    out = workspace.run("check").output
    assert "post: v3 removed" in out and "PRIORITY" not in out  # an edit that touches no keyword
