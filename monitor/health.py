"""`monitor health`: whether this machine's daemon, or the whole fleet, is healthy, in lines a
person reads (the state itself is read by monitor/fleet.py)."""
from __future__ import annotations

from . import lease
from .blobs import location
from .fleet import LIVE_WITHIN, report
from .storage import STORAGE_ERRORS, database_name, storage_error
from .words import plural


def health_lines(settings, fleet_wide: bool = False) -> tuple[bool, list[str]]:
    """`monitor health`: whether this machine's daemon (or, `fleet_wide`, the fleet) is healthy,
    and lines saying how the fleet is; on failure the last line says why."""
    from .app import open_store
    from .scheduler import health
    from .store import StoreError

    lines: list[str] = []
    files = location(settings.monitor.snapshots).kind == "files"
    if files and not fleet_wide:
        ok, message = health(settings)  # the heartbeat file, and a write to the snapshots folder
        if not ok:
            return False, [message]
        lines.append(message)
    try:
        store = open_store(settings)
    except StoreError as exc:
        return False, lines + [str(exc)]
    try:
        state = report(store.engine, lease.length(settings.monitor))
    except STORAGE_ERRORS as exc:
        return False, lines + [f"cannot read the fleet: {storage_error(store.url, exc)}"]
    finally:
        store.close()
    here = lease.machine()
    mine = [w for w in state["workers"] if w["live"] and w["host"] == here]
    if not files and not fleet_wide:
        if not mine:
            return False, [f"no live worker on this machine ({here}) in {database_name(settings.database_url)}: "
                           "is `monitor run` running with this config?"]
        lines.append(f"ok: daemon heartbeat {min(w['beat_age'] for w in mine):.0f}s ago")
    lines += _fleet_lines(state)
    if fleet_wide:
        if not state["live"]:
            return False, lines + ["no live worker: no `monitor run` has beaten in the last "
                                   f"{LIVE_WITHIN:.0f}s"]
        if state["overdue"]:
            return False, lines + [f"{plural(state['overdue'], 'check')} overdue by more than "
                                   f"{state['late_after']:.0f}s: the workers are not keeping up"]
        lines.append("ok: the fleet keeps up")
    return True, lines


def _fleet_lines(state: dict) -> list[str]:
    claims, alerts = state["claims"], state["alerts"]
    oldest = alerts["oldest_pending_age"]
    paused = ", ".join(f"{p['host']} ({p['seconds_left']:.0f}s, {p['why']})" for p in state["paused_hosts"][:5])
    return [
        f"fleet: {plural(state['live'], 'worker')} live, {state['stale']} stale",
        f"claims: {plural(claims['targets']['held'], 'target')}, {plural(claims['alerts']['held'], 'alert')}, "
        f"{plural(claims['sites']['held'], 'site')} held; {sum(c['lapsed'] for c in claims.values())} lapsed",
        f"checks overdue by more than {state['late_after']:.0f}s: {state['overdue']:,}",
        f"alerts: {alerts['pending']:,} pending" + (f" (oldest {oldest:.0f}s)" if oldest is not None else "")
        + f", {alerts['failed']:,} failed",
        f"hosts paused: {state['hosts_paused']:,}" + (f": {paused}" if paused else ""),
    ]
