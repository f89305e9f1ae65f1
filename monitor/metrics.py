"""Prometheus metrics: `/metrics` on the web server, and on `[monitor] metrics_port` of a worker.

Two kinds. This process's own counters (checks by outcome, check latency, bytes fetched): each
worker counts its own, so sum them over the instances Prometheus scrapes. The fleet's state, read
from the database at each scrape (the alert outbox's depth and age, claims held and lapsed,
workers alive, hosts paused, checks overdue): the same on every endpoint, so take one (max).
"""
from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import fleet
from .storage import STORAGE_ERRORS

log = logging.getLogger("monitor.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROCESS = CollectorRegistry(auto_describe=True)
CHECKS = Counter("monitor_checks", "Checks finished by this process, by outcome", ["outcome"], registry=PROCESS)
CHECK_SECONDS = Histogram("monitor_check_seconds", "How long one check took (fetch, extract, compare, store)",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=PROCESS)
FETCH_BYTES = Counter("monitor_fetch_bytes", "Bytes of pages, feeds and sitemaps fetched by this process",
                      registry=PROCESS)


def checked(result) -> None:
    """A check finished (a monitor/results.py CheckResult)."""
    CHECKS.labels(result.outcome).inc()
    CHECK_SECONDS.observe(result.duration_ms / 1000)


def fetched(result) -> None:
    """A fetch finished (a monitor/fetch.py FetchResult)."""
    FETCH_BYTES.inc(len(result.body))


def _gauge(name: str, doc: str, value: float | None, labels: list[str] | None = None, rows=()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, value=None if labels else (value or 0), labels=labels)
    for label_values, v in rows:
        family.add_metric(label_values, v)
    return family


class Fleet(Collector):
    """The fleet's state from the database, at each scrape."""

    def __init__(self, engine, late_after: float):
        self.engine, self.late_after = engine, late_after

    def collect(self):
        try:
            state = fleet.report(self.engine, self.late_after)
        except STORAGE_ERRORS as exc:
            log.warning("metrics: cannot read the fleet's state from the database: %s", type(exc).__name__)
            yield _gauge("monitor_database_up", "Whether the database answered this scrape", 0)
            return
        yield _gauge("monitor_database_up", "Whether the database answered this scrape", 1)
        yield _gauge("monitor_workers", "Workers by heartbeat: live (within a minute) or stale", None, ["state"],
                     [(["live"], state["live"]), (["stale"], state["stale"])])
        yield _gauge("monitor_worker_heartbeat_age_seconds", "Seconds since each worker's last heartbeat", None,
                     ["worker"], [([w["worker"]], w["beat_age"]) for w in state["workers"] if w["beat_age"] is not None])
        yield _gauge("monitor_leases", "Claims on targets, alerts and sites: held, or lapsed (their holder stopped "
                     "renewing them)", None, ["kind", "state"],
                     [([kind, s], n) for kind, c in state["claims"].items() for s, n in c.items()])
        yield _gauge("monitor_targets_overdue", "Active targets whose check is overdue by more than one lease",
                     state["overdue"])
        alerts = state["alerts"]
        yield _gauge("monitor_alerts_pending", "Alerts waiting in the outbox", alerts["pending"])
        yield _gauge("monitor_alert_oldest_pending_seconds", "Age of the oldest alert waiting in the outbox",
                     alerts["oldest_pending_age"])
        yield _gauge("monitor_alerts_failed", "Alerts given up on", alerts["failed"])
        yield _gauge("monitor_hosts_paused", "Hosts that asked the fleet to back off (429, Retry-After)",
                     state["hosts_paused"])
        yield _gauge("monitor_host_pause_seconds", "Seconds left of each paused host's pause", None, ["host"],
                     [([p["host"]], p["seconds_left"]) for p in state["paused_hosts"]])


class _Everything(Collector):
    def __init__(self, engine, late_after: float):
        self.fleet = Fleet(engine, late_after)

    def collect(self):
        yield from PROCESS.collect()
        yield from self.fleet.collect()


def registry(engine, late_after: float) -> CollectorRegistry:
    """This process's metrics and the fleet's, for one database."""
    everything = CollectorRegistry(auto_describe=False)
    everything.register(_Everything(engine, late_after))
    return everything


def serve(engine, late_after: float, host: str, port: int):
    """A worker's own metrics endpoint (any path answers), in a thread; returns its server (its
    shutdown() stops it). Raises OSError when the port cannot be had."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, host, registry=registry(engine, late_after))
    return server
