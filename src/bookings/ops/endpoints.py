"""``/metrics`` (JSON) and ``/metrics.prom`` (Prometheus text exposition)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from bookings.ops.metrics import Metrics

router = APIRouter(tags=["operations"])


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


@router.get("/metrics", operation_id="getMetrics", summary="Counters and histograms as JSON")
async def metrics_json(request: Request) -> dict[str, Any]:
    return _metrics(request).snapshot()


@router.get(
    "/metrics.prom",
    operation_id="getPrometheusMetrics",
    summary="Prometheus text exposition",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics_prometheus(request: Request) -> Response:
    return Response(_metrics(request).prometheus_text(), media_type=CONTENT_TYPE_LATEST)
