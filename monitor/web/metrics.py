"""GET /metrics: Prometheus metrics (monitor/metrics.py), behind the same login as every page
(Prometheus sends the web_token as `Authorization: Bearer`, or HTTP Basic)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import lease
from .context import web_of

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """This process's counters (a `monitor run --serve` counts its checks) and the fleet's state,
    read from the database now (a plain function: FastAPI runs it in a thread, off the loop)."""
    from prometheus_client import generate_latest

    from .. import metrics as exported

    web = web_of(request)
    everything = exported.registry(web.store.engine, lease.length(web.live.get().monitor))
    return Response(generate_latest(everything), media_type=exported.CONTENT_TYPE)
