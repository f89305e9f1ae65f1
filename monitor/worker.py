"""The daemon as one worker of a fleet: its heartbeat row in the database (what `monitor workers`
and `monitor health` read, monitor/fleet.py), its metrics (monitor/metrics.py) counted and, with
`[monitor] metrics_port`, served on a port of its own."""
from __future__ import annotations

import logging

from . import fleet, lease, metrics
from .blobs import location
from .models import utcnow
from .storage import STORAGE_ERRORS, storage_error

log = logging.getLogger("monitor.daemon")


class Presence:
    def __init__(self, settings, store, fetcher):
        self.settings, self.store = settings, store
        self.started_at = utcnow()
        self.checks = 0
        self.server = None
        self._error: str | None = None
        # With a snapshots folder the daemon also touches a heartbeat file there (Docker's
        # HEALTHCHECK, and proof the folder takes a write); the database row serves every store.
        self.files = location(settings.monitor.snapshots).kind == "files"
        fetcher.observe = metrics.fetched

    def start(self) -> None:
        """Serve metrics on [monitor] metrics_port, when set (a port in use is logged, not fatal)."""
        monitor = self.settings.monitor
        if not monitor.metrics_port:
            return
        try:
            self.server = metrics.serve(self.store.engine, lease.length(monitor), monitor.metrics_host,
                                        monitor.metrics_port)
        except OSError as exc:
            log.error("cannot serve metrics on %s:%d: %s", monitor.metrics_host, monitor.metrics_port,
                      exc.strerror or exc)
            return
        log.info("metrics on http://%s:%d/metrics", monitor.metrics_host, monitor.metrics_port)

    def checked(self, result) -> None:
        self.checks += 1
        metrics.checked(result)

    def beat(self, in_flight: int) -> None:
        """The heartbeat row; a failure is logged when it starts and when it ends, and stops nothing."""
        try:
            fleet.beat(self.store.engine, self.started_at, self.checks, in_flight)
        except STORAGE_ERRORS as exc:
            error = storage_error(self.store.url, exc)
            if error != self._error:
                log.error("cannot write this worker's heartbeat to the database (%s); `monitor workers` shows it "
                          "stale until it can", error)
            self._error = error
            return
        if self._error:
            log.info("heartbeat written to the database again")
        self._error = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        try:
            fleet.leave(self.store.engine)
        except STORAGE_ERRORS as exc:  # its row goes stale instead
            log.warning("could not remove this worker's heartbeat row: %s", storage_error(self.store.url, exc))
