"""The config's targets and sites -> the store's targets table (the store knows no config)."""
from __future__ import annotations

from .config import ConfigError, Settings
from .store import NameTaken, Store, TargetState, Watched


def watched(settings: Settings) -> list[Watched]:
    """The configured targets as the store keeps them: name, URL and interval."""
    return [Watched(t.name, t.url, settings.interval(t)) for t in settings.targets]


def sync_targets(settings: Settings, store: Store) -> dict[str, TargetState]:
    """Make the targets table match the config (Store.sync_targets); the configured targets'
    states by name. A name already taken by a discovered post is a config error."""
    try:
        return store.sync_targets(watched(settings), [s.name for s in settings.sites])
    except NameTaken as exc:
        raise ConfigError(str(exc)) from None
