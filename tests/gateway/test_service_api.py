"""/api/endpoints, /api/health-event, /health, /ready and /metrics; events reach HA."""

from __future__ import annotations

import json

import aiohttp
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from spark_gateway.appkeys import UPSTREAM
from spark_gateway.config import GatewayConfig
from spark_gateway.ha_events import HaNotifier, core_api_url
from tests.gateway.conftest import FakeHomeAssistant, GatewayFactory, RunningGateway
from tests.paths import CONTRACTS
from tests.sim import SimCluster


def contract(name: str) -> dict[str, object]:
    return json.loads((CONTRACTS / name).read_text())


async def get(gateway: RunningGateway, path: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession(headers=gateway.headers()) as session,
        session.get(f"{gateway.url}{path}") as resp,
    ):
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


async def test_endpoints_contract(gateway: RunningGateway, sim: SimCluster) -> None:
    status, body = await get(gateway, "/api/endpoints")
    assert status == 200
    assert isinstance(body, dict)
    required = contract("api_endpoints.json")["required"]
    assert isinstance(required, dict)
    for service, keys in required.items():
        assert set(keys) <= set(body[service]), service
    assert body["vllm"] == {
        "ready": True,
        "base_url": f"{sim.vllm.url}/v1",
        "model": sim.config.served_model,
        "openai_compat": True,
    }
    assert body["parakeet"]["ready"] is True
    assert body["parakeet"]["kind"] == "stt"
    assert body["magpie"] == {"ready": True, "base_url": sim.magpie.url, "kind": "tts"}


async def test_endpoints_when_services_are_down(gateway: RunningGateway, sim: SimCluster) -> None:
    await sim.faults.refuse("vllm")
    await sim.faults.refuse("magpie")
    _, body = await get(gateway, "/api/endpoints")
    assert isinstance(body, dict)
    # base_url stays filled whenever configured; ready says not to route traffic there.
    assert body["vllm"]["ready"] is False
    assert body["vllm"]["base_url"] == f"{sim.vllm.url}/v1"
    assert body["vllm"]["model"] is None
    assert body["magpie"]["ready"] is False
    assert body["parakeet"]["ready"] is True
    status, ready = await get(gateway, "/ready")
    assert status == 503
    assert ready == {
        "status": "unavailable",
        "services": {"vllm": False, "parakeet": True, "magpie": False},
    }


async def test_unconfigured_services(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()
    _, body = await get(gateway, "/api/endpoints")
    assert isinstance(body, dict)
    assert body["vllm"]["base_url"] is None
    assert body["vllm"]["ready"] is False
    status, error = await gateway.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert status == 503
    assert error["error"]["code"] == "upstream_not_configured"


async def test_health_event_forwarded_to_ha(
    gateway: RunningGateway, fake_ha: FakeHomeAssistant
) -> None:
    example = contract("health_event.json")["example"]
    status, body = await gateway.post("/api/health-event", json=example)
    assert status == 202
    assert body == {"accepted": True, "forwarded": True}
    # The same keys as sent, plus the gateway's URL of the service (names the cluster).
    upstream = {"upstream": gateway.app[UPSTREAM].base_url(example["service"])}
    assert fake_ha.events == [("spark_control_health_report", {**example, **upstream})]
    assert set(upstream) == set(contract("health_event.json")["ha_event_adds"])
    status, _ = await gateway.post("/api/health-event", json={"service": "vllm", "ok": True})
    assert status == 202
    assert fake_ha.events[-1] == (
        "spark_control_health_report",
        {"service": "vllm", "ok": True, "upstream": gateway.app[UPSTREAM].base_url("vllm")},
    )
    status, _ = await gateway.post("/api/health-event", json={"service": "open-webui", "ok": True})
    assert fake_ha.events[-1] == (
        "spark_control_health_report",
        {"service": "open-webui", "ok": True},
    )


async def test_health_event_validation(gateway: RunningGateway, fake_ha: FakeHomeAssistant) -> None:
    for bad in (
        {"ok": True},
        {"service": "vllm"},
        {"service": "vllm", "ok": "yes"},
        {"service": "", "ok": True},
        {"service": "vllm", "ok": True, "ms": -3},
    ):
        status, body = await gateway.post("/api/health-event", json=bad)
        assert status == 400, bad
        assert body["error"]["code"] == "invalid_health_event"
    # The answer says what is wrong with the field, not only which (was "not a valid value").
    for bad, words in (
        ({"service": "vllm", "ok": False, "error": "e" * 2001}, "at most 2000"),
        ({"service": "vllm", "ok": False, "source": "s" * 129}, "at most 128"),
        ({"service": "vllm", "ok": True, "ms": -3}, "at least 0"),
    ):
        status, body = await gateway.post("/api/health-event", json=bad)
        assert status == 400, bad
        assert words in body["error"]["message"], body
    status, _ = await gateway.post(
        "/api/health-event", data=b"not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert fake_ha.events == []


async def test_health_event_without_ha(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()
    status, body = await gateway.post("/api/health-event", json={"service": "x", "ok": False})
    assert (status, body) == (202, {"accepted": True, "forwarded": False})


def test_core_api_url_accepts_either_form() -> None:
    assert core_api_url("http://ha.lan:8123") == "http://ha.lan:8123/api"
    assert core_api_url("http://ha.lan:8123/api/") == "http://ha.lan:8123/api"


async def test_notifier_picks_supervisor_or_configured_ha(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with aiohttp.ClientSession() as session:
        monkeypatch.delenv("SUPERVISOR_TOKEN", raising=False)
        assert not HaNotifier.from_config(session, GatewayConfig()).enabled
        monkeypatch.setenv("SUPERVISOR_TOKEN", "sv-token")
        under_supervisor = HaNotifier.from_config(session, GatewayConfig())
        assert under_supervisor.enabled
        assert under_supervisor.api_url == "http://supervisor/core/api"
        # An explicit HA URL and token win (standalone gateway next to HA Container).
        explicit = HaNotifier.from_config(
            session, GatewayConfig(ha_url="http://ha.lan:8123", ha_token="llat")
        )
        assert explicit.api_url == "http://ha.lan:8123/api"


async def test_notifier_supervisor_shape_and_refusal(fake_ha: FakeHomeAssistant) -> None:
    async with aiohttp.ClientSession() as session:
        # Under Supervisor the Core API sits at http://supervisor/core/api.
        notifier = HaNotifier(session, f"{fake_ha.url}/core/api", fake_ha.token)
        assert await notifier.fire("spark_control_wedge_report", {"service": "parakeet"})
        wrong = HaNotifier(session, f"{fake_ha.url}/api", "bad-token")
        assert not await wrong.fire("spark_control_wedge_report", {"service": "parakeet"})
        unreachable = HaNotifier(session, "http://127.0.0.1:9/api", "t")
        assert not await unreachable.fire("spark_control_wedge_report", {})
    assert fake_ha.events == [("spark_control_wedge_report", {"service": "parakeet"})]
    assert fake_ha.unauthorized == 1


async def test_liveness_needs_no_key_or_upstream(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(vllm_url="http://127.0.0.1:9")
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"


async def test_metrics(gateway: RunningGateway, client: AsyncOpenAI, sim: SimCluster) -> None:
    await client.models.list()
    await sim.faults.refuse("vllm")
    await gateway.post("/v1/completions", json={"model": "m", "prompt": "x"})
    status, text = await get(gateway, "/metrics")
    assert status == 200
    assert isinstance(text, str)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert (
        samples[
            (
                "spark_gateway_requests_total",
                (("method", "GET"), ("route", "/v1/models"), ("status", "200")),
            )
        ]
        == 1
    )
    assert (
        samples[
            (
                "spark_gateway_requests_total",
                (("method", "POST"), ("route", "/v1/completions"), ("status", "503")),
            )
        ]
        == 1
    )
    assert (
        samples[
            ("spark_gateway_upstream_errors_total", (("kind", "unavailable"), ("service", "vllm")))
        ]
        == 1
    )
    assert (
        samples[("spark_gateway_request_duration_seconds_count", (("route", "/v1/models"),))] == 1
    )
    assert samples[("spark_gateway_in_flight_requests", ())] == 1  # this /metrics request


async def test_metrics_series_stay_bounded_whatever_method_a_client_sends(
    gateway: RunningGateway,
) -> None:
    """Methods are client input: any beyond HTTP's own share one series instead of one each
    (aiohttp's C parser refuses unknown names with 400, its pure-Python one takes any token)."""
    webdav = ("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH")
    async with aiohttp.ClientSession() as session:
        for method in webdav * 5:
            async with session.request(method, f"{gateway.url}/v1/models") as resp:
                assert resp.status == 401  # no key: refused before routing
    status, text = await get(gateway, "/metrics")
    assert status == 200
    assert isinstance(text, str)
    methods = {
        s.labels["method"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "spark_gateway_requests_total"
    }
    assert methods == {"other"}
    counted = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "spark_gateway_requests_total" and s.labels["method"] == "other"
    ]
    assert counted == [40]
