"""Prometheus metrics for the gateway, in a registry of its own (one per app)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CLIENT_CLOSED = 499  # nginx's "client closed request": not a server fault
OTHER_METHOD = "other"  # any method a client invents: one series, not one per name
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    """Requests, latency, upstream errors and in-flight requests."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "spark_gateway_requests",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "spark_gateway_request_duration_seconds",
            "Time to the response's headers",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "spark_gateway_upstream_errors",
            "Failed upstream calls",
            ["service", "kind"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "spark_gateway_in_flight_requests", "Requests being handled", registry=self.registry
        )
        self.wedge_reports = Counter(
            "spark_gateway_wedge_reports",
            "Wedge reports sent to Home Assistant",
            ["service"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)

    def middleware(self) -> Middleware:
        """Count and time every request by its route pattern (bounded label set)."""
        in_flight = self.in_flight
        # Each label set's series, looked up once: `labels()` validates and locks on every call.
        latency_of: dict[str, Histogram] = {}
        requests_of: dict[tuple[str, str, int], Counter] = {}

        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            start = time.perf_counter()
            in_flight.inc()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as err:
                status = err.status
                raise
            except (asyncio.CancelledError, ConnectionResetError):
                # The client went away before the answer was complete (nginx's 499).
                status = CLIENT_CLOSED
                raise
            finally:
                in_flight.dec()
                if (latency := latency_of.get(route)) is None:
                    latency = latency_of[route] = self.latency.labels(route)
                latency.observe(time.perf_counter() - start)
                method = request.method if request.method in hdrs.METH_ALL else OTHER_METHOD
                key = (method, route, status)
                if (requests := requests_of.get(key)) is None:
                    requests = requests_of[key] = self.requests.labels(*key[:2], str(status))
                requests.inc()

        return metrics_middleware
