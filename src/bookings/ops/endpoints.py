"""``/metrics`` (JSON) and ``/metrics.prom`` (Prometheus text exposition)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, RootModel

from bookings.ops.metrics import Metrics

router = APIRouter(tags=["operations"])

PROMETHEUS_EXAMPLE = """\
# HELP bookings_created_total Bookings created.
# TYPE bookings_created_total counter
bookings_created_total 1520.0
# HELP bookings_ws_clients WebSocket clients connected.
# TYPE bookings_ws_clients gauge
bookings_ws_clients 42.0
"""


class LabelledValue(BaseModel):
    labels: dict[str, str]
    value: float


# A named model, so that a generated client has a `MetricsSnapshot` type, not `GetMetricsResponseGetmetrics`.
class MetricsSnapshot(RootModel[dict[str, float | list[LabelledValue]]]):
    """Each metric by name: its value, or for a metric with labels one `{labels, value}` per set of labels."""


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Counters and histograms as JSON",
    response_model=MetricsSnapshot,
    description="`{name: value}` for a metric without labels, `{name: [{labels, value}]}` for one with labels.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "bookings_created_total": 1520.0,
                        "bookings_ws_clients": 42.0,
                        "bookings_http_requests_total": [
                            {"labels": {"method": "POST", "route": "/v1/bookings", "status": "201"}, "value": 1520.0}
                        ],
                    }
                }
            }
        }
    },
)
async def metrics_json(request: Request) -> dict[str, Any]:
    return _metrics(request).snapshot()  # checked against MetricsSnapshot on the way out


@router.get(
    "/metrics.prom",
    operation_id="getPrometheusMetrics",
    summary="Prometheus text exposition",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}, "example": PROMETHEUS_EXAMPLE}}}},
)
async def metrics_prometheus(request: Request) -> Response:
    return Response(_metrics(request).prometheus_text(), media_type=CONTENT_TYPE_LATEST)
