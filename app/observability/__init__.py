"""Operations: Prometheus metrics, structured logs and the request id of each HTTP request."""

from app.observability.logs import (
    JsonFormatter,
    configure_logging,
    current_request_id,
    logging_config,
)
from app.observability.metrics import Metrics
from app.observability.middleware import ObservabilityMiddleware

__all__ = [
    "JsonFormatter",
    "Metrics",
    "ObservabilityMiddleware",
    "configure_logging",
    "current_request_id",
    "logging_config",
]
