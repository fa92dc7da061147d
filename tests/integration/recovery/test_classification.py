"""How answers of the services classify: wedged, down or healthy."""

from __future__ import annotations

import pytest

from custom_components.spark_control.sparklib.recovery import (
    ServiceHealth,
    classify_health_response,
    classify_work_response,
)

CUBLAS_BODY = (
    '{"detail": "RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling '
    '`cublasGemmEx( handle, opa, opb, m, n, k, &falpha, a, CUDA_R_16F, lda, b)`"}'
)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"text": "hello"}', ServiceHealth.HEALTHY),
        (500, CUBLAS_BODY, ServiceHealth.WEDGED),
        (500, "Internal Server Error", ServiceHealth.WEDGED),
        (502, "", ServiceHealth.WEDGED),
        (200, CUBLAS_BODY, ServiceHealth.WEDGED),  # a server that wraps errors in a 200
        (400, '{"error": "bad audio"}', ServiceHealth.HEALTHY),  # orderly refusal: not a wedge
    ],
)
def test_work_responses(status: int, body: str, expected: ServiceHealth) -> None:
    assert classify_work_response(status, body) is expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"status": "ok"}', ServiceHealth.HEALTHY),
        (503, "loading", ServiceHealth.DOWN),  # vLLM loading a model: never restart it
        (500, "boom", ServiceHealth.WEDGED),
        (200, "CUDA_ERROR_LAUNCH_FAILED", ServiceHealth.WEDGED),
        (404, "not found", ServiceHealth.DOWN),
    ],
)
def test_health_responses(status: int, body: str, expected: ServiceHealth) -> None:
    assert classify_health_response(status, body) is expected
