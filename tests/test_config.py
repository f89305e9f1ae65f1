"""config.load(): targets.toml -> settings, or a ConfigError that says where the mistake is."""
from __future__ import annotations

import pytest

from monitor.config import ConfigError, load, parse_duration

TARGET = '[[targets]]\nname = "blog"\nurl = "https://example.org/post"\n'


def write(tmp_path, text: str):
    path = tmp_path / "targets.toml"
    path.write_text(text)
    return path


def error(tmp_path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message, "the message names the file"
    return message


def test_valid_file_loads_with_defaults(tmp_path):
    settings = load(write(tmp_path, TARGET + 'interval = "6h"\n[[targets]]\nname = "docs"\nurl = "http://docs.example.org"\n'))
    blog, docs = settings.targets
    assert (blog.name, blog.url, blog.selector, blog.ignore, blog.ignore_text) == ("blog", "https://example.org/post", None, [], [])
    assert settings.interval(blog) == 6 * 3600
    assert settings.interval(docs) == settings.monitor.interval == 15 * 60
    assert settings.monitor.timeout == 30 and settings.monitor.retries == 2
    assert settings.target("docs") is docs
    assert settings.snapshots_dir == tmp_path / "snapshots"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'monitor.db'}"


def test_empty_file_is_a_valid_config_with_no_targets(tmp_path):
    assert load(write(tmp_path, "")).targets == []


@pytest.mark.parametrize("text, expected", [
    (TARGET + 'intervl = "5m"\n', ["targets[0]", "'blog'", "'intervl'", "unknown key"]),
    (TARGET + 'interval = "5x"\n', ["targets[0]", "'blog'", "'interval'", "'5x'"]),
    ('[monitor]\ntimeout = "soon"\n', ["monitor", "'timeout'", "'soon'"]),
    ('[monitor]\ncolour = "red"\n', ["monitor", "'colour'", "unknown key"]),
    (TARGET + TARGET, ["targets[1]", "'blog'", "duplicate", "name", "targets[0]"]),
    (TARGET.replace("https://", "ftp://"), ["targets[0]", "'blog'", "'url'", "ftp://example.org/post"]),
    (TARGET.replace("https://example.org", "https://"), ["targets[0]", "'blog'", "'url'", "host"]),
    (TARGET.replace("https://", ""), ["targets[0]", "'blog'", "'url'"]),
    (TARGET + 'selector = "div[[x"\n', ["targets[0]", "'blog'", "'selector'", "div[[x"]),
    (TARGET + 'ignore = [".ok", "a >> b"]\n', ["targets[0]", "'blog'", "'ignore'", "a >> b"]),
    (TARGET + 'ignore_text = ["ok", "(unclosed"]\n', ["targets[0]", "'blog'", "'ignore_text'", "(unclosed"]),
    ('[alerts.mail]\ntype = "email"\nsmtp_host = "127.0.0.1"\nfrom = "m@example.org"\nto = ["r@example.org"]\n'
     + TARGET + 'alerts = ["slack"]\n', ["targets[0]", "blog", "alerts", "'slack'"]),
    ('[monitor]\nalerts = ["pager"]\n', ["monitor", "alerts", "'pager'"]),
    ('[[targets]]\nname = "a"\nurl = "https://a.example"\n[[targets]]\nname = "b"\nurl = "https://b.example"\n'
     'interval = "1y"\n', ["targets[1]", "'b'", "'interval'"]),
    ('[[targets]]\nurl = "https://example.org"\n', ["targets[0]", "'name'", "required"]),
], ids=["unknown-key", "bad-duration", "monitor-bad-duration", "monitor-unknown-key", "duplicate-name", "ftp-url",
        "url-without-host", "url-without-scheme", "bad-selector", "bad-ignore-selector", "bad-regex",
        "unknown-alert-channel", "monitor-unknown-alert-channel", "second-target-by-name", "missing-name"])
def test_mistakes_name_file_target_and_key(tmp_path, text, expected):
    message = error(tmp_path, text)
    for part in expected:
        assert part in message, f"{part!r} missing from: {message}"


def test_invalid_toml(tmp_path):
    assert "not valid TOML" in error(tmp_path, '[[targets]\nname = "blog"\n')


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found") as info:
        load(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(info.value)


def test_env_vars_expand_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MON_TEST_HOST", "news.example.com")
    monkeypatch.setenv("MON_TEST_TOKEN", "s3cret")
    settings = load(write(tmp_path, '[[targets]]\nname = "n"\nurl = "https://${MON_TEST_HOST}/feed"\n'
                                    'headers = { Authorization = "Bearer ${MON_TEST_TOKEN}" }\n'))
    [target] = settings.targets
    assert target.url == "https://news.example.com/feed"
    assert target.headers == {"Authorization": "Bearer s3cret"}


def test_unset_env_var_names_the_variable_target_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("MON_TEST_UNSET", raising=False)
    message = error(tmp_path, TARGET + 'headers = { Cookie = "${MON_TEST_UNSET}" }\n')
    assert "${MON_TEST_UNSET}" in message and "not set" in message
    assert "targets[0]" in message and "Cookie" in message


@pytest.mark.parametrize("database, expected", [
    ("sqlite:///monitor.db", "{dir}/monitor.db"),
    ("sqlite:///data/watch.db", "{dir}/data/watch.db"),
    ("sqlite:///../shared/watch.db", "{parent}/shared/watch.db"),
    ("sqlite:////var/lib/monitor.db", "/var/lib/monitor.db"),
    ("sqlite:///:memory:", ":memory:"),
])
def test_sqlite_path_resolves_beside_the_toml_file(tmp_path, monkeypatch, database, expected):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "targets.toml").write_text(f'[monitor]\ndatabase = "{database}"\n')
    monkeypatch.chdir(tmp_path)  # not the config's folder, and the path given is relative
    settings = load("conf/targets.toml")
    real = tmp_path.resolve()
    assert settings.database_url == "sqlite:///" + expected.format(dir=real / "conf", parent=real)


def test_non_sqlite_database_url_is_untouched(tmp_path):
    url = "postgresql://user@db.example/monitor"
    assert load(write(tmp_path, f'[monitor]\ndatabase = "{url}"\n')).database_url == url


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("15m", 900), ("6h", 21600), ("1d", 86400), ("1h30m", 5400), ("1h 30m", 5400),
    ("2w", 1209600), ("500ms", 0.5), ("1.5h", 5400), (" 15M ", 900), (45, 45),
])
def test_durations_parse_to_seconds(tmp_path, text, seconds):
    assert parse_duration(text) == seconds
    value = f'"{text}"' if isinstance(text, str) else text
    assert load(write(tmp_path, f"[monitor]\ninterval = {value}\n")).monitor.interval == seconds


@pytest.mark.parametrize("text", ["5x", "", "m", "15", "15m garbage", "-5m", "0s", "1h-30m", True])
def test_bad_durations_are_rejected(text):
    with pytest.raises(ValueError):
        parse_duration(text)
