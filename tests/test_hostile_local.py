"""A hostile or broken local environment: a config that overflows, a database that cannot be
opened, a full disk, lost or damaged captures, a snapshots folder that stops taking writes. Each
is a clear error naming what is wrong; recording goes on wherever it can; nothing stored is lost.

Full and read-only disks are real: a small tmpfs and a read-only bind mount, made by the test
(they need root and mount(8); without them those tests are skipped)."""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess

import pytest

from conftest import checked, daemon_config, history, wait_for
from monitor.config import Post, load
from monitor.snapshots import Snapshots


def _page(words: str) -> str:
    return f"<html><head><title>Post</title></head><body><article><h1>Post</h1><p>{words}</p></article></body></html>"


# Long enough that a text is stored as a small delta against its raw capture.
_MORE = " ".join(f"Paragraph {i} of the minutes records who spoke and what they said." for i in range(60))
ORIGINAL = _page("The committee approved the plan on Monday after a long debate. " + _MORE)
EDITED = _page("The committee rejected the plan on Monday after a long debate. " + _MORE)
AGAIN = _page("The committee rejected the plan on Tuesday after a long debate. " + _MORE)

HEAD = """
[monitor]
retries = 0
calibrate = false
timeout = "3s"
"""


def target(name: str, url: str, extra: str = "") -> str:
    return f'\n[[targets]]\nname = "{name}"\nurl = "{url}"\n{extra}'


@contextlib.contextmanager
def mounted(path, *args: str):
    """mount(8) on path for the block (root only), else skip the test."""
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) for a real full or read-only filesystem")
    done = subprocess.run(["mount", *args, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


# ---- 1. numbers and URLs that overflow --------------------------------------------------------

SITE = '\n[[sites]]\nname = "blog"\nfeeds = ["https://blog.example.org/feed"]\n'


@pytest.mark.parametrize("text, expected", [
    (target("post", "http://[::1]:99999/"), ["targets[0] (target 'post')", "key 'url'", "99999", "port"]),
    (target("post", "http://127.0.0.1:0/"), ["targets[0] (target 'post')", "key 'url'", "port"]),
    (target("post", "https://example.org/", 'interval = "99999999999999999999d"'),
     ["targets[0] (target 'post')", "key 'interval'", "99999999999999999999d", "too long"]),
    (target("post", "https://example.org/", "interval = inf"), ["targets[0] (target 'post')", "key 'interval'"]),
    ('[monitor]\ntimeout = "999999999h"\n', ["monitor, key 'timeout'", "999999999h", "too long"]),
    ('[monitor]\nretry_backoff = nan\n', ["monitor, key 'retry_backoff'", "nan"]),
    ('[monitor]\nmax_bytes = 99999999999999999999999\n', ["monitor, key 'max_bytes'"]),
    ('[monitor]\nalert_retry = "9999999999w"\n', ["monitor, key 'alert_retry'", "too long"]),
    ('[monitor]\nalert_max_age = "9999999999w"\n', ["monitor, key 'alert_max_age'", "too long"]),
    ('[monitor]\nconcurrency = 99999999999999999999\n', ["monitor, key 'concurrency'"]),
    ('[monitor]\nbase_url = "https://example.org:70000/"\n', ["monitor, key 'base_url'", "port"]),
    (SITE + 'max_interval = "99999999999d"\n', ["sites[0] (site 'blog')", "key 'max_interval'", "too long"]),
    (SITE + 'discover_interval = "99999999999d"\n', ["sites[0] (site 'blog')", "key 'discover_interval'"]),
    (SITE.replace("blog.example.org", "blog.example.org:99999"), ["sites[0] (site 'blog')", "key 'feeds'", "port"]),
    ('[monitor]\nallow_networks = ["10.0.0.0/8", "10.0.0.0/33"]\n', ["monitor, key 'allow_networks'", "10.0.0.0/33"]),
    ('[monitor]\nallow_networks = ["intranet"]\n', ["monitor, key 'allow_networks'", "'intranet'"]),
], ids=["port-too-big", "port-zero", "interval-overflow", "interval-inf", "timeout", "backoff-nan", "max-bytes",
        "alert-retry", "alert-max-age", "concurrency", "base-url-port", "site-max-interval",
        "site-discover-interval", "site-feed-port", "network-prefix", "network-name"])
def test_out_of_range_settings_are_config_errors(workspace, text, expected):
    workspace.write_config(text)
    result = workspace.run("check", expect=2)
    assert result.output.startswith(f"config error: {workspace.config.resolve()}"), result.output
    for part in expected:
        assert part in result.output, f"{part!r} missing from: {result.output}"


def test_address_policy_keys_one_answer_per_target_and_post(tmp_path):
    path = tmp_path / "targets.toml"
    path.write_text('[monitor]\nallow_networks = ["10.20.0.7/16", "fd00::/8"]\n'
                    + target("default", "https://a.example.org/")
                    + target("intranet", "https://b.example.org/", "allow_private = true")
                    + SITE + "allow_private = true\n")
    settings = load(path)
    default, intranet = settings.targets
    policy = settings.monitor.address_policy(default)
    assert policy.allow_private is False
    assert [str(n) for n in policy.allow_networks] == ["10.20.0.0/16", "fd00::/8"]
    assert settings.monitor.address_policy(intranet).allow_private is True
    post = Post.of(settings.site("blog"), "blog-post", "https://blog.example.org/post")
    assert settings.monitor.address_policy(post).allow_private is True  # a site's posts inherit it

    path.write_text('[monitor]\nallow_private = true\n' + target("off", "https://a.example.org/", "allow_private = false")
                    + target("inherits", "https://b.example.org/"))
    settings = load(path)
    off, inherits = settings.targets
    assert settings.monitor.address_policy(off) == (False, ())
    assert settings.monitor.address_policy(inherits) == (True, ())


# ---- 2. a database that cannot be opened -------------------------------------------------------

COMMANDS = [("check",), ("targets",), ("sites",), ("history", "post"), ("diff", "post"), ("show", "post"),
            ("alerts",), ("explain", "post"), ("run",), ("serve",)]


@pytest.mark.parametrize("database, problem", [
    ("nosuch://x", "nosuch"),
    ("sqlite:///missing/folder/monitor.db", "does not exist"),
    ("sqlite:///monitor.db", "not a database"),
], ids=["unknown-scheme", "missing-folder", "random-bytes"])
def test_a_database_that_cannot_be_opened_is_one_clear_error(workspace, database, problem):
    workspace.write_config(f'[monitor]\ndatabase = "{database}"\n' + target("post", "http://127.0.0.1:9/"))
    junk = os.urandom(8192)
    (workspace.path / "monitor.db").write_bytes(junk)
    name = database if "://x" in database else str(workspace.path.resolve() / database.removeprefix("sqlite:///"))
    for command in COMMANDS:
        result = workspace.run(*command, expect=2)
        assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
        assert result.output.startswith("error: ") and name in result.output and problem in result.output, \
            f"{command}: {result.output}"
    assert (workspace.path / "monitor.db").read_bytes() == junk, "the file is left as it was"
    assert not (workspace.path / "missing").exists()


# ---- 3. a full disk ----------------------------------------------------------------------------

def _fill(folder, leave: int) -> None:
    """Take all but `leave` bytes of the filesystem holding `folder`."""
    with open(folder / "filler", "wb") as handle:
        handle.truncate(0)
        size = shutil.disk_usage(folder).free - leave
        chunk = b"\0" * 65536
        while size > 0:
            handle.write(chunk[:size])
            size -= len(chunk)


def _bulky(seed: int) -> str:
    """A page whose capture does not fit in what is left of the disk (random words do not compress)."""
    words = os.urandom(120_000).hex()
    return _page(f"Edition {seed}: " + " ".join(words[i:i + 12] for i in range(0, len(words), 12)))


def test_a_full_disk_ends_the_pass_with_its_summary_and_an_error_and_loses_nothing(server, workspace):
    data = workspace.path / "data"
    with mounted(data, "-t", "tmpfs", "-o", "size=6m", "tmpfs"):
        for name, body in (("a", _bulky(1)), ("b", _bulky(2)), ("same", ORIGINAL)):
            server.set(f"/{name}", body)
        workspace.write_config(HEAD + 'database = "sqlite:///data/monitor.db"\nsnapshots = "data/snapshots"\n'
                               + "".join(target(n, server.url(f"/{n}")) for n in ("a", "b", "same")))
        workspace.run("check")
        workspace.run("check")  # "same" is now an unchanged streak: its next check is batched
        before = {n: history(workspace, n)["versions"] for n in ("a", "b", "same")}

        server.set("/a", _bulky(3))
        server.set("/b", _bulky(4))
        _fill(data, leave=96 * 1024)
        result = workspace.run("check", expect=1)
        lines = result.output.splitlines()
        assert "checked 3 targets: 2 error, 1 unchanged" in lines, result.output
        for name in ("a", "b"):
            line = next(x for x in lines if x.startswith(f"{name}: "))
            assert "could not save this check" in line and str(data) in line, line
        assert lines[-1].startswith("error: not everything this pass found could be saved: "), result.output
        assert "Traceback" not in result.output

        (data / "filler").unlink()
        db = sqlite3.connect(data / "monitor.db")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        for name in ("a", "b", "same"):
            assert history(workspace, name)["versions"] == before[name], "what was stored is intact"
            assert workspace.run("show", name, "1").output.strip()
        result = workspace.run("check")
        assert "checked 3 targets: 2 changed, 1 unchanged" in result.output
        assert [v["version"] for v in history(workspace, "a")["versions"]] == [2, 1]


# ---- 4. a lost or damaged capture --------------------------------------------------------------

def _damage(workspace, version: dict, kind: str, how: str) -> None:
    path = Snapshots(workspace.path / "snapshots").path(version[f"{kind}_sha256"])
    if how == "missing":
        path.unlink()
    else:
        path.write_bytes(os.urandom(path.stat().st_size))


@pytest.mark.parametrize("damage", [{"text": "missing"}, {"text": "damaged", "raw": "damaged"}, {"raw": "missing"}],
                         ids=["text-missing", "both-damaged", "raw-missing"])
def test_a_lost_capture_is_recaptured_and_recording_goes_on(server, workspace, damage):
    server.set("/post", ORIGINAL)
    workspace.write_config(HEAD + target("post", server.url("/post")))
    workspace.run("check")
    for kind, how in damage.items():
        _damage(workspace, history(workspace, "post")["versions"][0], kind, how)

    server.set("/post", EDITED)
    result = workspace.run("check")
    assert "post: v2 rebaselined: previous capture v1 missing or damaged" in result.output, result.output
    assert "re-captured as the new baseline" in result.output
    h = history(workspace, "post")
    assert h["changes"][0]["kind"] == "rebaselined" and h["target"]["status"] == "ok"
    assert any(e["kind"] == "error" and "re-captured" in e["summary"] for e in h["events"])
    assert "re-captured" in workspace.run("history", "post").output
    for command in (("show", "post", "1"), ("diff", "post")):  # the lost text: one clear line each
        result = workspace.run(*command, expect=1)
        assert result.output.startswith("error: post v1") and "snapshot" in result.output, result.output
        assert result.output.count("\n") == 1

    server.set("/post", AGAIN)  # the next edit is compared with the re-captured version as usual
    result = workspace.run("check")
    assert "post: v3 edited" in result.output and "Tuesday" in workspace.run("diff", "post").output
    assert "Tuesday" in workspace.run("show", "post", "3").output


def test_a_damaged_earlier_raw_capture_does_not_stop_the_next_version(server, workspace):
    # Short pages: each text is stored whole, so v2's text still reads without its raw capture.
    server.set("/post", _page("The plan was approved on Monday."))
    workspace.write_config(HEAD + target("post", server.url("/post")))
    workspace.run("check")
    server.set("/post", _page("The plan was rejected on Monday."))
    workspace.run("check")
    v2 = history(workspace, "post")["versions"][0]
    _damage(workspace, v2, "raw", "damaged")  # v3's capture would be stored as a delta against it

    server.set("/post", _page("The plan was rejected on Tuesday."))
    result = workspace.run("check")
    assert "post: v3 edited" in result.output, result.output
    assert "Tuesday" in workspace.run("show", "post", "3").output
    assert "Tuesday" in workspace.run("show", "post", "3", "--raw").output


def test_a_selector_the_old_capture_lacks_rebaselines_quietly(server, workspace):
    server.set("/post", ORIGINAL)
    workspace.write_config(HEAD + target("post", server.url("/post"), 'selector = "article"'))
    workspace.run("check")
    server.set("/post", _page("Unchanged.").replace("</article>", f'</article><div class="note">{_MORE}</div>'))
    workspace.write_config(HEAD + target("post", server.url("/post"), 'selector = ".note"'))
    result = workspace.run("check")
    assert "post: v2 rebaselined: extraction settings changed" in result.output, result.output
    h = history(workspace, "post")
    assert h["target"]["status"] == "ok" and not any(e["kind"] == "error" for e in h["events"])


# ---- 5. the daemon with a snapshots folder that stops taking writes -----------------------------

def test_daemon_keeps_its_watch_and_health_tells_when_snapshots_cannot_be_written(server, workspace,
                                                                                   daemon_factory):
    server.set("/a", ORIGINAL)
    server.set("/b", EDITED)
    workspace.write_config(daemon_config(server, ["a"], interval="1h"))
    daemon = daemon_factory()
    wait_for(lambda: checked(workspace, "a"))
    wait_for(lambda: workspace.run("health", expect=None).exit_code == 0)
    snapshots = workspace.path / "snapshots"
    with mounted(snapshots, "--bind", str(snapshots)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(snapshots)], check=True)
        result = workspace.run("health", expect=1)
        assert f"the daemon cannot write to {snapshots}" in result.output and "Read-only" in result.output
        wait_for(lambda: "cannot write the heartbeat" in daemon.output())

        # The watch lives on: a saved config is still reloaded, and the new target's check is
        # recorded as a failure that says why.
        workspace.write_config(daemon_config(server, ["a", "b"], interval="1h"))
        h = wait_for(lambda: (h := history(workspace, "b")) and h["target"]["last_error"] and h)
        assert "could not save this check" in h["target"]["last_error"]
        assert "Read-only file system" in h["target"]["last_error"]
        assert daemon.proc.poll() is None
    wait_for(lambda: "heartbeat written again" in daemon.output())
    assert workspace.run("health").output.startswith("ok: daemon heartbeat")
    assert daemon.stop() == 0
