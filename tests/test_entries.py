"""Pausing, resuming and removing a watch from the command line: targets.toml is edited in place
(every other byte kept), and nothing stored is lost."""
from __future__ import annotations

import blog
import story

CONFIG = """# Newsroom watch list
[monitor]
retries = 0
calibrate = false   # keep it quick

# The January post that said "facial recognition".
[[targets]]
name = "ice"
url = "{ice}"
keywords = ["facial recognition"]  # priority

# A second page, to be removed.
[[targets]]
name = "other"
url = "{other}"

[[targets]]
name = "press"
url = "{press}"
"""


def setup(server, workspace) -> str:
    for path, seed in (("/ice", 0), ("/other", 1), ("/press", 2)):
        server.set(path, blog.post(seed=seed))
    text = CONFIG.format(ice=server.url("/ice"), other=server.url("/other"), press=server.url("/press"))
    workspace.write_config(text)
    workspace.run("check")
    return text


def fetched(server) -> set[str]:
    paths = {path for path, _ in server.requests}
    server.requests.clear()
    return paths


def test_pause_then_resume_keeps_the_file_and_the_history(server, workspace):
    original = setup(server, workspace)
    fetched(server)

    out = workspace.run("pause", "ice").output
    assert "paused target 'ice'" in out and "monitor resume ice" in out
    text = workspace.config.read_text()
    assert text == original.replace('keywords = ["facial recognition"]  # priority\n',
                                    'keywords = ["facial recognition"]  # priority\npaused = true\n')
    workspace.run("check")
    assert fetched(server) == {"/other", "/press"}  # the paused page is not requested
    rows = {r["name"]: r for r in workspace.json("targets")}
    assert rows["ice"]["status"] == "paused" and rows["ice"]["versions"] == 1
    assert "already paused" in workspace.run("pause", "ice").output

    ui = story.UI(workspace)
    try:
        assert {r["name"]: r["status"] for r in ui.get("/api/targets").json()}["ice"] == "paused"
        assert '<span class="badge">paused</span>' in ui.get("/").text
    finally:
        ui.close()

    assert "resumed target 'ice'" in workspace.run("resume", "ice").output
    assert workspace.config.read_text() == original  # byte for byte
    server.set("/ice", blog.post([p for p in blog.PARAGRAPHS if p != blog.ICE], seed=0))
    out = workspace.run("check").output
    assert "ice: v2 removed" in out  # the history went on where it stopped


def test_remove_takes_the_entry_and_its_comment_and_keeps_the_history(server, workspace):
    original = setup(server, workspace)
    out = workspace.run("remove", "other").output
    assert "removed target 'other'" in out
    assert workspace.config.read_text() == original.replace(
        f'# A second page, to be removed.\n[[targets]]\nname = "other"\nurl = "{server.url("/other")}"\n\n', "")
    assert sorted(r["name"] for r in workspace.json("targets")) == ["ice", "press"]
    kept = {r["name"]: r for r in workspace.json("targets", "--all")}
    assert kept["other"]["active"] is False and kept["other"]["versions"] == 1


def test_entry_commands_name_the_file_and_what_is_wrong(server, workspace):
    original = setup(server, workspace)
    for command in ("pause", "resume", "remove"):
        result = workspace.run(command, "nope", expect=2)
        assert f"{workspace.config}: no [[targets]] or [[sites]] entry named 'nope'" in result.stderr
    assert workspace.config.read_text() == original
    # Global options may come before the command, as with every other command.
    from click.testing import CliRunner

    from monitor.cli import main

    before = CliRunner().invoke(main, ["--config", str(workspace.config), "pause", "press"], catch_exceptions=False)
    assert before.exit_code == 0 and "paused target 'press'" in before.output
