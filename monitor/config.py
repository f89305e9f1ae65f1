"""targets.toml -> typed, validated settings.

Everything a user can get wrong here is reported as a ConfigError that names the file, the
target (when there is one) and the key, before any check runs.
"""
from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import kinds

DEFAULT_CONFIG = "targets.toml"
DEFAULT_USER_AGENT = (
    "monitor/0.1 (web-change monitor for published pages; +https://github.com/monitor-project/monitor)"
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
HOUR = 3600.0
YEAR = 366 * 86400.0


class ConfigError(Exception):
    """A problem with targets.toml, worded for the person who wrote it."""


def parse_duration(value: Any, allow_zero: bool = False, at_most: float = YEAR) -> float:
    """'90s', '15m', '6h', '1d', '1h30m' or a number of seconds -> seconds (at most `at_most`)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '15m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if text[pos:match.start()].strip():
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text) or text[pos:].strip():
            raise ValueError(f"bad duration {value!r}: use a number with a unit, like '90s', '15m', '6h' or '1d'")
    else:
        raise ValueError(f"expected a duration like '15m', got {value!r}")
    if math.isnan(seconds):
        raise ValueError(f"expected a duration like '15m', got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"duration {value!r} must be more than zero")
    if seconds > at_most:
        raise ValueError(f"duration {value!r} is too long: at most {_plain_duration(at_most)}")
    return seconds


def _plain_duration(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds / 3600:g} hour(s)"


def duration(at_most: float = YEAR, allow_zero: bool = False):
    """A duration key's type: parsed by parse_duration, bounded so no timer or date overflows."""
    return Annotated[float, BeforeValidator(lambda v: parse_duration(v, allow_zero, at_most))]


Duration = duration()  # a pace: intervals, ages (at most a year)
ShortDuration = duration(HOUR)  # a wait inside one check or delivery
ShortDurationOrZero = duration(HOUR, allow_zero=True)


def _check_url(url: str) -> str:
    import httpx

    try:
        parts = urlsplit(url)
        httpx.URL(url)  # what the fetcher will parse
    except (ValueError, httpx.InvalidURL) as exc:
        raise ValueError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad URL {url!r}: it must start with http:// or https:// and name a host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"bad URL {url!r}: the port must be a number from 1 to 65535")
    return url


def _check_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"bad network {value!r}: use an address or a CIDR network, like '10.1.0.0/16' "
                         "or 'fd00::/8'") from None


def _check_selector(selector: str) -> str:
    import soupsieve

    try:
        soupsieve.compile(selector)
    except Exception as exc:  # soupsieve raises SelectorSyntaxError, plus ValueError on odd input
        raise ValueError(f"bad CSS selector {selector!r}: {str(exc).splitlines()[0]}") from None
    return selector


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Settings(Strict):
    """[monitor.s3]: the object storage of `snapshots = "s3://bucket/prefix"` (see monitor/blobs.py).
    Keys left out come from the usual AWS places (AWS_ACCESS_KEY_ID…, ~/.aws, an instance role)."""

    endpoint: str | None = Field(None, description="the S3 API's URL, e.g. http://minio:9000; none for AWS")
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] | None = Field(
        None, description="bucket in the path or in the host name; default path with an endpoint, else auto")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class MonitorSettings(Strict):
    database: str = "sqlite:///monitor.db"
    snapshots: str = Field("snapshots", description='a folder, "database", or "s3://bucket/prefix"')
    s3: S3Settings = S3Settings()
    metrics_port: int = Field(0, ge=0, lt=65536, description="`monitor run` serves Prometheus metrics on this "
                                                             "port (0: not)")
    metrics_host: str = Field("127.0.0.1", description="the address metrics_port listens on")
    interval: Duration = 900.0
    user_agent: str = DEFAULT_USER_AGENT
    timeout: ShortDuration = 30.0
    max_bytes: int = Field(10_000_000, gt=0, le=1_000_000_000, description="body-size cap, enforced while streaming")
    max_redirects: int = Field(10, ge=0, le=100)
    retries: int = Field(2, ge=0, le=10, description="retries on connect errors and 5xx")
    retry_backoff: ShortDuration = 1.0
    concurrency: int = Field(16, ge=1, le=1000, description="checks in flight at once")
    workers: int = Field(0, ge=0, le=64, description="processes sharing a `monitor check` pass; 0 = one per CPU "
                                                     "(at most 4) once there are 100 targets per process")
    per_host: int = Field(2, ge=1, le=100, description="requests in flight to one host")
    host_delay: ShortDurationOrZero = Field(0.0, description="least time between two requests to one host (a "
                                                        "robots.txt Crawl-delay raises it for that host)")
    gone_after: int = Field(3, ge=1, le=1000, description="consecutive 404/410 answers that raise 'gone'")
    jitter: float = Field(0.1, ge=0, le=0.5, description="fraction of the interval to spread checks by")
    alerts: list[str] = []
    base_url: str | None = None
    alert_retry: ShortDuration = Field(30.0, description="first retry delay of a failed alert; doubles each time")
    alert_max_age: Duration = Field(86400.0, description="give up on an alert this old")
    calibrate: bool = Field(True, description="fetch a new target twice to learn its volatile blocks")
    calibrate_delay: ShortDurationOrZero = 2.0
    alert_wait: ShortDurationOrZero = Field(15.0, description="how long `monitor check` waits for due retries")
    web_password: str | None = Field(None, min_length=8, description="the web UI's login (and HTTP Basic) password")
    web_token: str | None = Field(None, min_length=16, description="the web API's bearer token, for tools")
    allow_private: bool = Field(False, description="redirects and feed-listed URLs may reach private, loopback "
                                                   "and link-local addresses")
    allow_networks: list[str] = Field([], description="CIDR networks that redirects and feed-listed URLs may "
                                                      "reach, whatever their address class")
    # Evidence (docs/evidence.md): the Wayback Machine's CDX API and Save Page Now.
    wayback_cdx: str = Field("https://web.archive.org/cdx/search/cdx", description="the CDX API that "
                             "`monitor import-wayback` lists captures from; captures are fetched from /web/ there")
    wayback_delay: ShortDurationOrZero = Field(2.0, description="least time between two requests to the archive")
    save_page_now: bool = Field(False, description="ask the Wayback Machine to capture a page when a change is seen")
    save_page_now_url: str = "https://web.archive.org/save"
    save_page_now_key: str | None = Field(None, description="SPN2 API keys as ACCESS:SECRET (from ${ENV} variables)")
    timestamp_url: str | None = Field(None, description="an RFC 3161 time-stamping authority: each target's chain "
                                      "head is timestamped there after a check records a new version")
    wacz_signing_url: str | None = Field(None, description="an authsign server's /sign URL: a .wacz export is "
                                         "signed there (the WACZ spec's signedData)")
    wacz_signing_token: str | None = Field(None, description="the signing server's auth token (from ${ENV} variables)")
    browser_concurrency: int = Field(2, ge=1, le=32, description="pages the browser fetcher renders at once, "
                                                                 "in the whole process")
    browser_timeout: ShortDuration = Field(45.0, description="time to render one page in the browser, from "
                                                             "its document's arrival to its screenshot")
    browser_executable: str | None = Field(None, description="the Chromium binary (default: $CHROMIUM, else "
                                                             "/usr/bin/chromium)")

    @field_validator("base_url", "timestamp_url", "wacz_signing_url")
    @classmethod
    def _optional_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("wayback_cdx", "save_page_now_url")
    @classmethod
    def _archive_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [_check_network(n) for n in value]

    @field_validator("snapshots")
    @classmethod
    def _snapshots(cls, value: str) -> str:
        from .blobs import location

        location(value)  # an s3:// address that cannot be one is refused here
        return value

    def address_policy(self, watch: "Watch | None" = None) -> "AddressPolicy":
        """The one answer to "which addresses may a fetch for this target or post reach beyond its
        own configured URL": the target's (or its site's) allow_private, else [monitor]'s, and
        [monitor]'s allow_networks."""
        allow = self.allow_private if watch is None or watch.allow_private is None else watch.allow_private
        return AddressPolicy(allow, tuple(ipaddress.ip_network(n, strict=False) for n in self.allow_networks))


class AddressPolicy(NamedTuple):
    allow_private: bool
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


EVENT_KINDS = kinds.EVENTS
Kind = Literal[kinds.EVENTS]  # (the names in monitor/kinds.py)
# Off unless a channel lists them: a target's first capture, typography-only edits, and a site's new
# posts (a busy blog would otherwise fill the channel with every post it publishes).
DEFAULT_KINDS = kinds.DEFAULT_ALERTS


class Channel(Strict):
    """What every alert channel shares: which events it takes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    kinds: tuple[Kind, ...] = DEFAULT_KINDS
    min_words: int = Field(0, ge=0, le=1_000_000, description="skip changes smaller than this many words")

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line or an error message."""
        return []


class SlackChannel(Channel):
    type: Literal["slack"]
    webhook_url: str

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    def secrets(self) -> list[str]:
        return _url_secrets(self.webhook_url)


def _url_secrets(url: str) -> list[str]:
    """A receiver's URL is a credential: its path, query or password holds the token (what is left
    in a log line is scheme://host)."""
    parts = urlsplit(url)
    return [part for part in (parts.path, parts.query, parts.password) if part]


class EmailChannel(Channel):
    type: Literal["email"]
    smtp_host: str
    smtp_port: int = Field(587, gt=0, lt=65536)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    timeout: ShortDuration = 30.0

    def secrets(self) -> list[str]:
        return [self.password] if self.password else []


class WebhookChannel(Channel):
    type: Literal["webhook"]
    url: str
    secret: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    def secrets(self) -> list[str]:
        return _url_secrets(self.url) + ([self.secret] if self.secret else [])


class AppriseChannel(Channel):
    type: Literal["apprise"]
    urls: list[str] = Field(min_length=1)

    def secrets(self) -> list[str]:
        return list(self.urls)


AlertChannel = Annotated[SlackChannel | EmailChannel | WebhookChannel | AppriseChannel, Field(discriminator="type")]


class Watch(Strict):
    """What to watch on a page and where to alert: a [[targets]] entry's keys, and the defaults a
    [[sites]] entry gives every post it discovers."""

    selector: str | None = None
    ignore: list[str] = []
    ignore_text: list[str] = []
    alerts: list[str] | None = None
    headers: dict[str, str] = {}
    tags: list[str] = []
    keywords: list[str] = []
    calibrate: bool | None = None
    learn: bool = True
    allow_private: bool | None = Field(None, description="override [monitor] allow_private for this page or site")
    paused: bool = Field(False, description="not checked (or, for a site, not discovered) until resumed; "
                                            "history is kept (`monitor pause`/`monitor resume`)")
    fetcher: Literal["http", "browser"] = Field("http", description="how the page is fetched: over HTTP, or "
                                                "rendered by headless Chromium (monitor/browser.py)")
    wait_for: str | None = Field(None, description="browser: CSS selector to wait for before reading the page "
                                                   "(default: the network going quiet)")
    screenshot: bool | None = Field(None, description="browser: keep a full-page PNG of each new version "
                                                      "(default: true with the browser)")

    @field_validator("selector", "wait_for")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return None if value is None else _check_selector(value)

    @model_validator(mode="after")
    def _browser_keys(self) -> "Watch":
        if self.fetcher != "browser":
            for key in ("wait_for", "screenshot"):
                if getattr(self, key):
                    raise ValueError(f'{key} needs fetcher = "browser" (only the browser renders the page)')
        return self

    @property
    def screenshots(self) -> bool:
        """Whether each new version gets a screenshot."""
        return self.fetcher == "browser" and self.screenshot is not False

    @field_validator("ignore")
    @classmethod
    def _ignore(cls, value: list[str]) -> list[str]:
        return [_check_selector(s) for s in value]

    @field_validator("ignore_text")
    @classmethod
    def _ignore_text(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        return value


class Target(Watch):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=200)
    url: str
    interval: Duration | None = None
    robots: bool = Field(False, description="obey robots.txt for this page (a page listed by hand is fetched "
                                            "like a browser bookmark; a site's discovered posts obey it)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @property
    def origins(self) -> tuple[str, ...]:
        """The configured URLs whose address class this page's fetches may reach (see
        monitor/addresses.py): a page listed by hand is trusted as written."""
        return (self.url,)


class Site(Watch):
    """A whole blog: its posts are discovered from feeds and sitemaps and each becomes a target.

    The Watch keys are defaults every discovered post inherits; a post's interval adapts between
    min_interval and max_interval."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=60)
    feeds: list[str] = []
    sitemaps: list[str] = []
    include: list[str] = Field([], description="URL glob patterns; only matching posts are watched")
    exclude: list[str] = Field([], description="URL glob patterns; matching posts are not watched")
    discover_interval: Duration = Field(3600.0, description="how often the feeds and sitemaps are read again")
    min_interval: Duration = Field(300.0, description="the pace of a new or just-edited post")
    max_interval: Duration = Field(86400.0, description="the pace of an old, long-unchanged post")
    robots: bool = Field(True, description="obey robots.txt (turn off only for your own sites)")
    # More posts than the biggest corporate blogs have (tens of thousands), yet few enough that each
    # is still checked at least daily (about one check a second); past it a listing is hostile or
    # mistaken. Raise it for a bigger site.
    max_posts: int = Field(100_000, ge=1, description="posts this site may hold; past it new URLs are not added")

    @field_validator("feeds", "sitemaps")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return [_check_url(url) for url in value]

    @property
    def origins(self) -> tuple[str, ...]:
        """The site's configured feeds and sitemaps: what its discovered URLs descend from."""
        return tuple(self.feeds) + tuple(self.sitemaps)

    @model_validator(mode="after")
    def _sources(self) -> "Site":
        if not self.feeds and not self.sitemaps:
            raise ValueError("a site needs at least one of feeds or sitemaps")
        if self.min_interval > self.max_interval:
            raise ValueError(f"min_interval ({self.min_interval:g}s) is longer than max_interval "
                             f"({self.max_interval:g}s)")
        return self


class Post(Target):
    """A discovered post as the check pipeline sees it: a Target with its site's settings.
    Built from the database (never from the file), so it is constructed without re-validation."""

    site: str
    min_interval: float
    max_interval: float
    published: datetime | None = None
    sources: tuple[str, ...] = ()  # the site's feeds and sitemaps

    @classmethod
    def of(cls, site: Site, name: str, url: str, published: datetime | None = None) -> "Post":
        watch = {key: getattr(site, key) for key in Watch.model_fields}
        return cls.model_construct(name=name, url=url, interval=None, robots=site.robots, site=site.name,
                                   min_interval=site.min_interval, max_interval=site.max_interval,
                                   published=published, sources=site.origins, **watch)

    @property
    def origins(self) -> tuple[str, ...]:
        """A post's URL came from a feed or sitemap: only those configured URLs are trusted."""
        return self.sources


class Config(Strict):
    monitor: MonitorSettings = MonitorSettings()
    alerts: dict[str, AlertChannel] = {}
    targets: list[Target] = []
    sites: list[Site] = []

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        seen: dict[str, int] = {}
        for i, target in enumerate(self.targets):
            if target.name in seen:
                raise ValueError(f"targets[{i}]: duplicate target name {target.name!r} (also targets[{seen[target.name]}])")
            seen[target.name] = i
            for channel in target.alerts or []:
                if channel not in self.alerts:
                    raise ValueError(f"targets[{i}] ({target.name}): alerts names unknown channel {channel!r}")
        sites: dict[str, int] = {}
        for i, site in enumerate(self.sites):
            if site.name in sites:
                raise ValueError(f"sites[{i}]: duplicate site name {site.name!r} (also sites[{sites[site.name]}])")
            sites[site.name] = i
            for channel in site.alerts or []:
                if channel not in self.alerts:
                    raise ValueError(f"sites[{i}] ({site.name}): alerts names unknown channel {channel!r}")
        for channel in self.monitor.alerts:
            if channel not in self.alerts:
                raise ValueError(f"monitor.alerts names unknown channel {channel!r}")
        return self


class Settings:
    """A loaded config plus where it came from, with paths resolved beside the file."""

    def __init__(self, config: Config, path: Path):
        self.config = config
        self.path = path
        self.base_dir = path.parent
        self._by_name: dict[str, Target] | None = None

    @property
    def monitor(self) -> MonitorSettings:
        return self.config.monitor

    @property
    def targets(self) -> list[Target]:
        """The [[targets]] that are watched now (not paused)."""
        return [t for t in self.config.targets if not t.paused]

    @property
    def sites(self) -> list[Site]:
        """The [[sites]] that are watched now (not paused)."""
        return [s for s in self.config.sites if not s.paused]

    @property
    def paused(self) -> frozenset[str]:
        """The names of paused [[targets]] and [[sites]] entries."""
        return frozenset(e.name for e in [*self.config.targets, *self.config.sites] if e.paused)

    def site(self, name: str) -> Site | None:
        return next((s for s in self.sites if s.name == name), None)

    def watch(self, name: str, site: str | None = None) -> Watch | None:
        """The one answer to "which settings apply to this target" (keywords, channels, rules):
        its [[targets]] entry, or for a discovered post the [[sites]] entry it belongs to."""
        if self._by_name is None:  # built once: the router and the outbox ask for every event
            self._by_name = {t.name: t for t in self.targets}
        target = self._by_name.get(name)
        return target if target is not None or site is None else self.site(site)

    @property
    def database_url(self) -> str:
        return resolve_database_url(self.monitor.database, self.base_dir)

    @property
    def snapshots_dir(self) -> Path:
        path = Path(self.monitor.snapshots).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def interval(self, target: Target) -> float:
        return target.interval or self.monitor.interval

    def channels_of(self, target: Target) -> list[str]:
        return list(self.monitor.alerts if target.alerts is None else target.alerts)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise ConfigError(f"{self.path}: no target named {name!r}")


class FileWatch:
    """Tells when a config file was saved since the last look (by modification time)."""

    def __init__(self, path: Path):
        self.path = path
        self._mtime = self._stat()

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def changed(self) -> bool:
        mtime = self._stat()
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        return True


def resolve_database_url(url: str, base_dir: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base_dir / url[len(prefix):]).resolve())
    return url


_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, str):
        def sub(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{where}: environment variable ${{{name}}} is not set")
            return os.environ[name]

        return _ENV_VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else k) for k, v in value.items()}
    return value


def _describe(loc: tuple, data: dict) -> str:
    """('targets', 2, 'intervl') -> "targets[2] (name 'x'), key 'intervl'"."""
    parts: list[str] = []
    node: Any = data
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
            name = node[item].get("name") if isinstance(node, list) and isinstance(node[item], dict) else None
            if name:
                parts[-1] += f" ({'site' if loc[0] == 'sites' else 'target'} {name!r})"
        elif i == len(loc) - 1 and parts:
            parts.append(f"key {item!r}")
        else:
            parts.append(str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return ", ".join(parts) if parts else "top level"


def config_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("MONITOR_CONFIG") or DEFAULT_CONFIG)


def load(path: str | os.PathLike | None = None) -> Settings:
    """Read, expand and validate targets.toml; raise ConfigError with file, target and key."""
    file = config_path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found (write one, or pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        data = _expand(data, "")
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"{_describe(err['loc'], data)}: {msg}")
        if len(problems) == 1:
            raise ConfigError(f"{file}: {problems[0]}") from None
        raise ConfigError(f"{file}: {len(problems)} problems:\n  - " + "\n  - ".join(problems)) from None
    return Settings(config, file.resolve())
