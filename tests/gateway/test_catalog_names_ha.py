"""Catalog keys as model names: the gateway asks the real Home Assistant for the model select,
and (with `swap_on_request`, llama-swap's behaviour) has it swap to a catalog model a chat
request names.

Home Assistant runs with the integration set up against the simulated cluster (over SSH) and its
REST API served on loopback; the gateway renders its templates and calls
`spark_control.swap_model` there with a real access token; the client is the official `openai`
SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import MagicMock

import openai
import pytest
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from openai import AsyncOpenAI
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.spark_control.const import (
    CONF_SWAP_FALLBACK,
    CONF_VOICE_BRIDGES,
    DOMAIN,
    EVENT_SWAP_FINISHED,
)
from spark_gateway.appkeys import MODEL_SWAPPER, SESSION, VLLM_HOLD
from spark_gateway.catalog_names import CatalogNames
from spark_gateway.chat_models import CURRENT
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.sim import SimCluster, SimConfig, generate_client_key
from tests.sim_entry import entry_identity, sim_entry_data

LOADED_KEY = "qwen36"  # the bundled catalog's key for the simulator's default model
TARGET = "gemma4"
TARGET_REPO = "google/gemma-4-27b-it"
THIRD = "qwen2.5-72b"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _ha_harness(enable_custom_integrations: None, mock_async_zeroconf: MagicMock) -> None:
    """Load this repository's integration; zeroconf gets the harness's stand-in."""


@pytest.fixture(scope="module")
def client_key() -> tuple[str, str]:
    return generate_client_key("gateway-catalog-test")


@pytest.fixture
def stop_delay() -> float:
    """How long `docker stop` takes on the simulated nodes (a test overrides this fixture)."""
    return SimConfig().stop_delay


@pytest.fixture
async def cluster(client_key: tuple[str, str], stop_delay: float) -> AsyncIterator[SimCluster]:
    # Loads long enough for requests to arrive while one runs, short enough for a quick test.
    config = SimConfig(authorized_keys=[client_key[1]], load_seconds=0.6, stop_delay=stop_delay)
    async with SimCluster(config) as sim:
        yield sim


@pytest.fixture
def ha_options() -> dict[str, Any]:
    """The config entry's options beyond the defaults (a test overrides this fixture)."""
    return {}


@pytest.fixture
async def ha_api(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    cluster: SimCluster,
    client_key: tuple[str, str],
    ha_options: dict[str, Any],
) -> str:
    """Home Assistant's REST API URL, with Spark Control loaded for the simulated cluster."""
    for component in ("http", "api", "websocket_api"):  # the gateway's ways in
        assert await async_setup_component(hass, component, {})
    data = sim_entry_data(cluster, *client_key)
    entry = MockConfigEntry(
        domain=DOMAIN, title="Lab", **entry_identity(data), data=data,
        options={CONF_VOICE_BRIDGES: False, **ha_options},
    )  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    client = await hass_client()
    return str(client.make_url("/api")).rstrip("/")


@pytest.fixture
async def start_swapping(
    ha_api: str, hass_access_token: str, cluster: SimCluster, start_gateway: GatewayFactory
) -> GatewayFactory:
    """Starts gateways with swap_on_request in front of the cluster's vLLM and this HA."""

    async def start(**overrides: Any) -> RunningGateway:
        return await start_gateway(
            **{
                "vllm_url": cluster.vllm.url,
                "ha_url": ha_api,
                "ha_token": hass_access_token,
                "swap_on_request": True,
                # Bounds the test (a failed load and a reload), not a swap's pace.
                "hold_timeout_s": 60.0,
                **overrides,
            }
        )

    return start


@pytest.fixture
async def swapping_gateway(start_swapping: GatewayFactory) -> RunningGateway:
    return await start_swapping()


async def test_catalog_key_names_the_loaded_model(
    hass: HomeAssistant,
    ha_api: str,
    hass_access_token: str,
    cluster: SimCluster,
    start_gateway: GatewayFactory,
) -> None:
    (select,) = hass.states.async_all("select")
    assert select.attributes["catalog_key"] == LOADED_KEY  # what the gateway will read
    gateway = await start_gateway(
        vllm_url=cluster.vllm.url, ha_url=ha_api, ha_token=hass_access_token
    )
    async with AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0
    ) as client:
        listed = (await client.models.list()).data
        assert [m.id for m in listed] == [cluster.config.served_model, CURRENT, LOADED_KEY]
        # The key's card carries the select's display name (Open WebUI's picker shows it).
        assert listed[2].model_extra is not None
        assert listed[2].model_extra["name"] == select.attributes["catalog"][LOADED_KEY]["name"]
        assert "name" not in (listed[1].model_extra or {})
        reply = await client.chat.completions.create(
            model=LOADED_KEY, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert reply.model == cluster.config.served_model
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(
                model="gemma4", messages=[{"role": "user", "content": "hi"}], max_tokens=3
            )
        assert info.value.body["code"] == "model_not_loaded"  # type: ignore[index]
        assert "Swap models in Home Assistant" in info.value.message
    assert not any("vllm serve" in c for c in cluster.nodes[0].commands)  # option off: no swap


async def test_several_selects_need_the_entity_named(
    hass: HomeAssistant, ha_api: str, hass_access_token: str, start_gateway: GatewayFactory
) -> None:
    """The template's answer is read as HA renders it; a named entity is taken as is."""
    gateway = await start_gateway(ha_url=ha_api, ha_token=hass_access_token)
    session = gateway.app[SESSION]
    (select,) = [s.entity_id for s in hass.states.async_all("select")]
    named = CatalogNames(session, ha_api, hass_access_token, entity_id=select)
    assert await named.loaded_key() == LOADED_KEY
    wrong = CatalogNames(session, ha_api, hass_access_token, entity_id="select.other_model")
    assert await wrong.loaded_key() is None
    refused = CatalogNames(session, ha_api, "not-a-token")
    assert await refused.loaded_key() is None


def _openai(gateway: RunningGateway) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0)


def _select_key(hass: HomeAssistant) -> Any:
    (select,) = hass.states.async_all("select")
    return select.attributes["catalog_key"]


async def _until_waiting(gateway: RunningGateway, count: int) -> None:
    async with asyncio.timeout(30):
        await gateway.app[MODEL_SWAPPER].until_waiting(count)


async def _until(event: asyncio.Event) -> None:
    async with asyncio.timeout(30):
        await event.wait()


def _swap_loading(hass: HomeAssistant) -> asyncio.Event:
    """Set when Home Assistant's swap sensor says vLLM is loading the new model (the old one
    is stopped by then)."""
    loading = asyncio.Event()

    @callback
    def on_change(event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if state is not None and state.domain == "sensor" and state.state == "loading":
            loading.set()

    hass.bus.async_listen(EVENT_STATE_CHANGED, on_change)
    return loading


async def test_request_for_another_model_swaps_to_it(
    hass: HomeAssistant, cluster: SimCluster, swapping_gateway: RunningGateway
) -> None:
    """Model B asked for while A is loaded: Home Assistant swaps, every request for B during the
    swap and every `current` request while B loads is answered by B, a third model is refused
    meanwhile."""
    loading = _swap_loading(hass)
    async with _openai(swapping_gateway) as client:
        listed = {m.id: m for m in (await client.models.list()).data}
        # The loaded model, its aliases, and the catalog's other models (by key, named).
        assert list(listed)[:3] == [cluster.config.served_model, CURRENT, LOADED_KEY]
        assert set(listed) == {
            cluster.config.served_model, CURRENT, LOADED_KEY, TARGET, THIRD, "qwen3-vl",
            "qwen3-235b-fp8",
        }  # fmt: skip
        assert listed[TARGET].model_extra == {
            "name": "Gemma 4 27B Instruct", "root": TARGET_REPO,
        }  # fmt: skip

        def ask(model: str) -> asyncio.Task[Any]:
            return asyncio.ensure_future(
                client.chat.completions.create(model=model, messages=HI, max_tokens=3)
            )

        first = ask(TARGET)
        await _until(loading)
        joined = [ask(TARGET) for _ in range(4)]
        current = [ask(CURRENT) for _ in range(2)]
        with pytest.raises(openai.APIStatusError) as third:
            await client.chat.completions.create(model=THIRD, messages=HI, max_tokens=3)
        assert third.value.status_code == 503
        assert third.value.response.headers["Retry-After"] == "10"
        assert third.value.body["code"] == "model_swap_in_progress"  # type: ignore[index]
        assert TARGET in third.value.message
        replies = await asyncio.gather(first, *joined, *current)

    assert [reply.model for reply in replies] == [TARGET_REPO] * 7
    assert all(reply.choices[0].message.content for reply in replies)
    assert _select_key(hass) == TARGET
    launches = [c for c in cluster.nodes[0].commands if "vllm serve" in c]
    assert len(launches) == 1  # one swap for all those requests
    assert TARGET_REPO in launches[0]


@pytest.mark.parametrize("ha_options", [{CONF_SWAP_FALLBACK: False}])
async def test_failed_swap_ends_waiting_requests_with_the_reason(
    hass: HomeAssistant, cluster: SimCluster, swapping_gateway: RunningGateway
) -> None:
    """The model runs out of memory while loading (no fallback: vLLM stays down): every request
    waiting for it, from before and during the load, gets a 502 naming vLLM's error at once
    (not a hold timeout); asking again soon after gets that 502 without another swap."""
    cluster.faults.oom_on_load(TARGET_REPO)
    loading = _swap_loading(hass)
    async with _openai(swapping_gateway) as client:

        def ask() -> asyncio.Future[Any]:
            return asyncio.ensure_future(
                client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
            )

        first = ask()
        await _until(loading)
        during = [ask(), ask()]
        results = await asyncio.gather(first, *during, return_exceptions=True)
        with pytest.raises(openai.APIStatusError) as again:
            await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
    _assert_failed_once(results, again.value, cluster)


def _assert_failed_once(
    results: list[Any], again: openai.APIStatusError, cluster: SimCluster
) -> None:
    """Every request got the failed load's 502 with vLLM's reason, the next one the same 502
    from memory, and the model was launched once."""
    for error in results:
        assert isinstance(error, openai.APIStatusError)
        assert error.status_code == 502
        assert error.body["code"] == "model_swap_failed"  # type: ignore[index]
        assert "CUDA out of memory" in error.message
        assert "vLLM serves no model now" in error.message
    assert again.status_code == 502
    assert "not tried again" in again.message
    assert int(again.response.headers["Retry-After"]) <= 60
    assert sum("vllm serve" in c for c in cluster.nodes[0].commands) == 1


async def test_requests_waiting_for_a_swap_are_bounded_in_number(
    hass: HomeAssistant, start_swapping: GatewayFactory
) -> None:
    """At most hold_max_requests wait for the swap; one more gets 503 + Retry-After at once."""
    gateway = await start_swapping(hold_max_requests=2)
    loading = _swap_loading(hass)
    async with _openai(gateway) as client:
        waiting = [
            asyncio.ensure_future(
                client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
            )
        ]
        await _until(loading)
        waiting.append(
            asyncio.ensure_future(
                client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
            )
        )
        await _until_waiting(gateway, 2)
        with pytest.raises(openai.APIStatusError) as full:
            await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
        replies = await asyncio.gather(*waiting)
    assert full.value.status_code == 503
    assert full.value.body["code"] == "hold_queue_full"  # type: ignore[index]
    assert full.value.response.headers["Retry-After"] == "10"
    assert [reply.model for reply in replies] == [TARGET_REPO] * 2


async def test_one_cap_bounds_swap_waiters_and_held_requests_together(
    hass: HomeAssistant, start_swapping: GatewayFactory
) -> None:
    """hold_max_requests=2: one request waits for the swap, one `current` request is held for
    vLLM while the new model loads; that is the cap, so the next request gets 503 + Retry-After
    at once, whether it would wait for the swap or for vLLM."""
    gateway = await start_swapping(hold_max_requests=2)
    loading = _swap_loading(hass)
    async with _openai(gateway) as client:

        def ask(model: str) -> asyncio.Future[Any]:
            return asyncio.ensure_future(
                client.chat.completions.create(model=model, messages=HI, max_tokens=3)
            )

        waiting = [ask(TARGET)]
        await _until(loading)
        waiting.append(ask(CURRENT))
        async with asyncio.timeout(30):
            await gateway.app[VLLM_HOLD].until_held(1)
        await _until_waiting(gateway, 1)
        refused = []
        for model in (TARGET, CURRENT):
            with pytest.raises(openai.APIStatusError) as full:
                await client.chat.completions.create(model=model, messages=HI, max_tokens=3)
            refused.append(full.value)
        replies = await asyncio.gather(*waiting)
    for error in refused:
        assert error.status_code == 503
        assert error.body["code"] == "hold_queue_full"  # type: ignore[index]
        assert error.response.headers["Retry-After"] == "10"
        assert "2 requests already wait" in error.message
    assert [reply.model for reply in replies] == [TARGET_REPO] * 2


@pytest.mark.parametrize("stopped", [False, True])
async def test_a_request_outwaited_by_its_swap_gets_503_and_the_swap_goes_on(
    hass: HomeAssistant, cluster: SimCluster, start_swapping: GatewayFactory, stopped: bool
) -> None:
    """Past hold_timeout_s the request gets 503 + Retry-After; Home Assistant finishes the swap
    (or the start of a stopped vLLM with the model it served) and the next request for the
    model is answered by it without another swap."""
    gateway = await start_swapping(hold_timeout_s=0.2)  # the simulated load takes 0.6 s
    finished = asyncio.Event()
    hass.bus.async_listen(EVENT_SWAP_FINISHED, callback(lambda _event: finished.set()))
    model, served = (LOADED_KEY, cluster.config.served_model) if stopped else (TARGET, TARGET_REPO)
    async with _openai(gateway) as client:
        if stopped:
            await _stop_vllm(hass)
        with pytest.raises(openai.APIStatusError) as late:
            await client.chat.completions.create(model=model, messages=HI, max_tokens=3)
        assert late.value.status_code == 503
        assert late.value.body["code"] == "vllm_not_ready"  # type: ignore[index]
        assert late.value.response.headers["Retry-After"] == "10"
        await _until(finished)
        async with asyncio.timeout(30):  # HA's answer to the gateway follows the event
            await gateway.app[MODEL_SWAPPER].until_idle()
        reply = await client.chat.completions.create(model=model, messages=HI, max_tokens=3)
    assert reply.model == served
    assert sum("vllm serve" in c for c in cluster.nodes[0].commands) == 1


async def test_failed_swap_with_fallback_says_the_old_model_is_back(
    hass: HomeAssistant, cluster: SimCluster, swapping_gateway: RunningGateway
) -> None:
    """With the integration's fallback on (its default), vLLM comes back with the old model:
    the request fails clearly, and the old model answers again afterwards."""
    cluster.faults.oom_on_load(TARGET_REPO)
    async with _openai(swapping_gateway) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
        assert failed.value.status_code == 502
        assert failed.value.body["code"] == "model_swap_failed"  # type: ignore[index]
        assert "CUDA out of memory" in failed.value.message
        assert f"vLLM serves {LOADED_KEY!r} now" in failed.value.message
        reply = await client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
    assert reply.model == cluster.config.served_model
    assert _select_key(hass) == LOADED_KEY


@pytest.mark.parametrize("stop_delay", [1.0])  # the old model is served 1 s into the swap
@pytest.mark.parametrize(
    ("picked", "moment"), [("qwen3-vl", "claimed"), ("qwen3-vl", "loading"), (TARGET, "claimed")]
)
async def test_a_swap_started_in_home_assistant_is_never_interrupted(
    hass: HomeAssistant,
    cluster: SimCluster,
    swapping_gateway: RunningGateway,
    caplog: pytest.LogCaptureFixture,
    picked: str,
    moment: str,
) -> None:
    """Someone picks a model on the select; a request for TARGET arriving then (the old model
    still served) or while it loads waits for that swap to finish, then has its own (serialised,
    as llama-swap does); none when that swap loaded TARGET itself: the same model is never
    launched twice (the integration's recovery relaunches vLLM through the same claim)."""
    labels = {"qwen3-vl": "Qwen3-VL 30B-A3B Instruct (FP8)", TARGET: "Gemma 4 27B Instruct"}
    loading = _swap_loading(hass)
    finished: list[str] = []
    hass.bus.async_listen(
        EVENT_SWAP_FINISHED, callback(lambda event: finished.append(event.data["model"]))
    )
    (select,) = hass.states.async_all("select")
    # Returns once Home Assistant has claimed the swap; vLLM still serves the old model.
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": select.entity_id, "option": labels[picked]},
        blocking=True,
    )
    if moment == "loading":
        await _until(loading)
    async with _openai(swapping_gateway) as client:
        reply = await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
    assert reply.model == TARGET_REPO
    assert finished == list(dict.fromkeys([picked, TARGET]))
    launches = [c for c in cluster.nodes[0].commands if "vllm serve" in c]
    assert [TARGET_REPO in c for c in launches] == ([True] if picked == TARGET else [False, True])
    if moment == "claimed":  # the gateway found the swap running and waited its turn
        assert f"the swap to {TARGET} waits" in caplog.text


async def _stop_vllm(hass: HomeAssistant) -> None:
    """The user stops vLLM in Home Assistant (the action behind its running switch)."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    await hass.services.async_call(
        DOMAIN, "stop_service", {"cluster": entry.entry_id, "service": "vllm"}, blocking=True
    )
    await hass.async_block_till_done()
    (switch,) = [s for s in hass.states.async_all("switch") if "vllm" in s.entity_id]
    assert switch.state == "off"
    assert _select_key(hass) is None


@pytest.mark.parametrize(
    ("model", "served"), [(LOADED_KEY, None), (CURRENT, None), (TARGET, TARGET_REPO)]
)
async def test_a_stopped_vllm_is_started_for_a_request(
    hass: HomeAssistant,
    cluster: SimCluster,
    swapping_gateway: RunningGateway,
    model: str,
    served: str | None,
) -> None:
    """vLLM stopped by the user: a request naming the model it served (by key or `current`)
    or another catalog model starts it with that model, once for all requests meanwhile."""
    served = served or cluster.config.served_model
    async with _openai(swapping_gateway) as client:
        await client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
        await _stop_vllm(hass)
        replies = await asyncio.gather(
            *(client.chat.completions.create(model=model, messages=HI, max_tokens=3)
              for _ in range(3))
        )  # fmt: skip
    assert [reply.model for reply in replies] == [served] * 3
    launches = [c for c in cluster.nodes[0].commands if "vllm serve" in c]
    assert len(launches) == 1
    assert served in launches[0]
    assert _select_key(hass) == (TARGET if model == TARGET else LOADED_KEY)


async def test_a_stopped_vllm_still_lists_what_a_request_can_start(
    hass: HomeAssistant,
    cluster: SimCluster,
    swapping_gateway: RunningGateway,
    start_swapping: GatewayFactory,
) -> None:
    """vLLM stopped: with swap_on_request `/v1/models` still lists `current` (the model served
    last) and every catalog model, each of which a request can start (Open WebUI sends a chat
    only for a model its last listing held); without the option only `current`."""
    plain = await start_swapping(swap_on_request=False)
    async with _openai(swapping_gateway) as client, _openai(plain) as plain_client:
        await client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
        await _stop_vllm(hass)
        async with asyncio.timeout(30):  # the listings' cache outlives the stop by 2 s
            while (listed := (await client.models.list()).data)[0].id != CURRENT:
                await asyncio.sleep(0.2)
        assert [m.id for m in (await plain_client.models.list()).data] == [CURRENT]
        catalog = hass.states.async_all("select")[0].attributes["catalog"]
        assert listed[0].id == CURRENT
        assert sorted(m.id for m in listed[1:]) == sorted(catalog)
        assert listed[0].model_extra is not None
        assert listed[0].model_extra["root"] == cluster.config.served_model
        assert "name" not in listed[0].model_extra
        by_key = {m.id: m.model_extra for m in listed[1:]}
        assert by_key[TARGET] == {"name": catalog[TARGET]["name"], "root": TARGET_REPO}
        reply = await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
    assert reply.model == TARGET_REPO


async def test_a_vllm_not_answering_while_ha_shows_it_running_is_only_waited_for(
    hass: HomeAssistant, cluster: SimCluster, swapping_gateway: RunningGateway
) -> None:
    """vLLM refuses connections before Home Assistant's next poll has seen it (a moment's
    gap; HA's polling is held back here so the moment lasts): HA still shows it running, the
    request is held until vLLM answers, and nothing is launched."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    status = entry.runtime_data.status
    async with _openai(swapping_gateway) as client:
        await client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
        polling, status.update_interval = status.update_interval, None
        await status.async_refresh()  # the last poll before the gap; none is scheduled after
        try:
            await cluster.faults.refuse("vllm")
            request = asyncio.ensure_future(
                client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
            )
            async with asyncio.timeout(30):
                await swapping_gateway.app[VLLM_HOLD].until_held(1)
            await cluster.faults.clear()
            reply = await request
        finally:
            status.update_interval = polling
    assert reply.model == cluster.config.served_model
    assert not any("vllm serve" in c for c in cluster.nodes[0].commands)
    assert _select_key(hass) == LOADED_KEY


async def test_a_container_left_without_vllm_is_started_for_a_request(
    hass: HomeAssistant, cluster: SimCluster, swapping_gateway: RunningGateway
) -> None:
    """`docker restart vllm_node` on the node leaves spark-vllm-docker's container running
    `sleep infinity` without vLLM: Home Assistant shows vLLM stopped once it polled, so a
    request starts it with the model it served."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    async with _openai(swapping_gateway) as client:
        await client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
        await cluster.world.docker.restart(cluster.vllm.container)
        await entry.runtime_data.status.async_refresh()
        await hass.async_block_till_done()
        (switch,) = [s for s in hass.states.async_all("switch") if "vllm" in s.entity_id]
        assert switch.state == "off"
        reply = await client.chat.completions.create(model=CURRENT, messages=HI, max_tokens=3)
    assert reply.model == cluster.config.served_model
    launches = [c for c in cluster.nodes[0].commands if "vllm serve" in c]
    assert len(launches) == 1


async def test_a_failed_start_is_a_502_with_the_reason_and_not_tried_again(
    hass: HomeAssistant, cluster: SimCluster, swapping_gateway: RunningGateway
) -> None:
    cluster.faults.oom_on_load(TARGET_REPO)
    async with _openai(swapping_gateway) as client:
        await _stop_vllm(hass)
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
        with pytest.raises(openai.APIStatusError) as again:
            await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
    _assert_failed_once([failed.value], again.value, cluster)


async def test_without_swap_on_request_a_stopped_vllm_stays_stopped(
    hass: HomeAssistant, cluster: SimCluster, start_swapping: GatewayFactory
) -> None:
    """The option off: a JSON 503 saying vLLM is stopped and where to start it, at once (Home
    Assistant shows it stopped; the hold would last ten minutes), without Retry-After (it comes
    back when someone starts it, not after a delay)."""
    gateway = await start_swapping(swap_on_request=False, hold_timeout_s=600.0)
    async with _openai(gateway) as client, asyncio.timeout(60):
        await client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
        await _stop_vllm(hass)
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model=LOADED_KEY, messages=HI, max_tokens=3)
    assert info.value.status_code == 503
    assert info.value.body["code"] == "vllm_stopped"  # type: ignore[index]
    assert "vLLM is stopped" in info.value.message
    assert "model select" in info.value.message
    assert "Retry-After" not in info.value.response.headers
    assert not any("vllm serve" in c for c in cluster.nodes[0].commands)


async def test_names_outside_the_catalog_never_swap(
    hass: HomeAssistant, cluster: SimCluster, swapping_gateway: RunningGateway
) -> None:
    async with _openai(swapping_gateway) as client:
        for name in ("gpt-4o", TARGET_REPO):  # a repo id is not a catalog key either
            with pytest.raises(openai.NotFoundError) as info:
                await client.chat.completions.create(model=name, messages=HI, max_tokens=3)
            assert info.value.body["code"] == "model_not_loaded"  # type: ignore[index]
    assert not any("vllm serve" in c for c in cluster.nodes[0].commands)
    assert _select_key(hass) == LOADED_KEY


async def test_without_home_assistant_the_404_says_why(
    cluster: SimCluster, start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPERVISOR_TOKEN", raising=False)
    gateway = await start_gateway(vllm_url=cluster.vllm.url, swap_on_request=True)
    async with _openai(gateway) as client:
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
    assert info.value.body["code"] == "model_not_loaded"  # type: ignore[index]
    assert "no access to Home Assistant's API" in info.value.message
    assert not any("vllm serve" in c for c in cluster.nodes[0].commands)


class CuttableLink:
    """A TCP relay between the gateway and Home Assistant that a test can cut, as a restarting
    Supervisor proxy or a network blip would: every open connection is closed at once."""

    def __init__(self, target: URL) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Set when Home Assistant sends the swap sensor's state over a WebSocket (its frames
        # to the client are not masked): the gateway is subscribed.
        self.sensor_sent = asyncio.Event()

    async def start(self) -> URL:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return self._target.with_port(port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._target.host, self._target.port)
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer, watch=False)),
            asyncio.ensure_future(self._pump(up_reader, writer, watch=True)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for stream in (writer, up_writer):
            stream.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, watch: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if watch and b'"event":{"a":{"sensor.' in data:
                    self.sensor_sent.set()
                writer.write(data)
                await writer.drain()

    def cut(self) -> None:
        """Close every connection through the link (new ones are still accepted)."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        self.sensor_sent.clear()

    async def close(self) -> None:
        """Close the link for good: no new connection is accepted, open ones are cut."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.cut()  # before waiting: the server waits for its open connections to close
        if server is not None:
            await server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _swap_failed_message(error: openai.APIStatusError) -> str:
    """The message of a 502 `model_swap_failed`."""
    assert error.status_code == 502
    assert error.body["code"] == "model_swap_failed"  # type: ignore[index]
    return str(error.body["message"])  # type: ignore[index]


@pytest.fixture
async def link(ha_api: str) -> AsyncIterator[CuttableLink]:
    relay = CuttableLink(URL(ha_api))
    yield relay
    await relay.close()


async def _request_waiting_on_a_ha_swap(
    hass: HomeAssistant, client: AsyncOpenAI, link: CuttableLink
) -> asyncio.Future[Any]:
    """Home Assistant's select starts a swap to qwen3-vl; a request for TARGET then waits for
    it, subscribed to the swap sensor through `link` (on return)."""
    (select,) = hass.states.async_all("select")
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": select.entity_id, "option": "Qwen3-VL 30B-A3B Instruct (FP8)"},
        blocking=True,
    )
    request = asyncio.ensure_future(
        client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
    )
    await _until(link.sensor_sent)
    return request


@pytest.mark.parametrize("stop_delay", [1.0])
async def test_a_dropped_connection_while_waiting_its_turn_is_opened_again(
    hass: HomeAssistant,
    cluster: SimCluster,
    start_swapping: GatewayFactory,
    link: CuttableLink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gateway waits for a swap started in Home Assistant on its WebSocket subscription;
    the connection is cut meanwhile: it connects again, subscribes again and swaps once that
    swap ended."""
    gateway = await start_swapping(ha_url=str(await link.start()))
    finished: list[str] = []
    hass.bus.async_listen(
        EVENT_SWAP_FINISHED, callback(lambda event: finished.append(event.data["model"]))
    )
    async with _openai(gateway) as client:
        request = await _request_waiting_on_a_ha_swap(hass, client, link)
        assert finished == []  # cut while Home Assistant's swap still runs
        link.cut()
        reply = await request
    assert reply.model == TARGET_REPO
    assert finished == ["qwen3-vl", TARGET]
    assert "connecting again to swap to gemma4" in caplog.text
    launches = [c for c in cluster.nodes[0].commands if "vllm serve" in c]
    assert [TARGET_REPO in c for c in launches] == [False, True]


@pytest.mark.parametrize("stop_delay", [1.0])
async def test_home_assistant_gone_while_waiting_its_turn_fails_the_request_clearly(
    hass: HomeAssistant,
    cluster: SimCluster,
    start_swapping: GatewayFactory,
    link: CuttableLink,
) -> None:
    """Home Assistant cannot be reached again after the connection dropped: the request gets
    a 502 saying so, and the swap started in Home Assistant goes on untouched."""
    gateway = await start_swapping(ha_url=str(await link.start()))
    finished = asyncio.Event()
    hass.bus.async_listen(EVENT_SWAP_FINISHED, callback(lambda _event: finished.set()))
    async with _openai(gateway) as client:
        request = await _request_waiting_on_a_ha_swap(hass, client, link)
        await link.close()
        with pytest.raises(openai.APIStatusError) as failed:
            await request
    message = _swap_failed_message(failed.value)
    assert message.startswith(
        "could not swap vLLM to 'gemma4': lost Home Assistant's WebSocket API while waiting "
        "to swap: cannot reach Home Assistant's WebSocket API: Cannot connect to host"
    )
    await _until(finished)
    assert _select_key(hass) == "qwen3-vl"
    assert not any(TARGET_REPO in c for c in cluster.nodes[0].commands if "vllm serve" in c)


@pytest.mark.parametrize("swap_on_request", [True, False])
async def test_current_from_a_gateway_started_while_vllm_is_stopped(
    hass: HomeAssistant, cluster: SimCluster, start_swapping: GatewayFactory, swap_on_request: bool
) -> None:
    """A gateway (re)started while vLLM is stopped never saw it serve: `current` names the model
    Home Assistant saw served last. With swap_on_request that model is started and answers;
    without, the request ends at once with a JSON 503 saying vLLM is stopped and where to start
    it (not a hold timeout: the hold here would last ten minutes)."""
    await _stop_vllm(hass)
    gateway = await start_swapping(swap_on_request=swap_on_request, hold_timeout_s=600.0)
    async with _openai(gateway) as client, asyncio.timeout(60):
        if swap_on_request:
            reply = await client.chat.completions.create(model=CURRENT, messages=HI, max_tokens=3)
            assert reply.model == cluster.config.served_model
            assert _select_key(hass) == LOADED_KEY
        else:
            with pytest.raises(openai.APIStatusError) as info:
                await client.chat.completions.create(model=CURRENT, messages=HI, max_tokens=3)
            assert info.value.status_code == 503
            assert info.value.body["code"] == "vllm_stopped"  # type: ignore[index]
            assert "vLLM is stopped" in info.value.message
            assert "Home Assistant" in info.value.message
    launches = [c for c in cluster.nodes[0].commands if "vllm serve" in c]
    assert len(launches) == (1 if swap_on_request else 0)


@pytest.mark.parametrize("stopped_by", ["home_assistant", "docker"])
@pytest.mark.parametrize("swap_on_request", [True, False])
async def test_a_request_held_while_vllm_is_being_stopped_is_checked_again(
    hass: HomeAssistant,
    cluster: SimCluster,
    start_swapping: GatewayFactory,
    swap_on_request: bool,
    stopped_by: str,
) -> None:
    """vLLM closes its port while `docker stop` runs (Home Assistant's stop action, or one typed
    on the node): a request then is held. Once Home Assistant shows the container stopped, the
    request ends at once with a 503 saying so (not at the hold deadline, ten minutes here); with
    swap_on_request it starts vLLM again and is answered, as a request arriving a moment later
    would be."""
    gateway = await start_swapping(swap_on_request=swap_on_request, hold_timeout_s=600.0)
    async with _openai(gateway) as client, asyncio.timeout(60):
        await client.chat.completions.create(model=CURRENT, messages=HI, max_tokens=3)
        await cluster.faults.refuse("vllm")  # shutting down: the port is closed first
        request = asyncio.ensure_future(
            client.chat.completions.create(model=CURRENT, messages=HI, max_tokens=3)
        )
        await gateway.app[VLLM_HOLD].until_held(1)
        if stopped_by == "home_assistant":
            await _stop_vllm(hass)
        else:
            await cluster.world.docker.stop(cluster.vllm.container)
            (entry,) = hass.config_entries.async_entries(DOMAIN)
            await entry.runtime_data.status.async_refresh()  # the next polls see it
            await entry.runtime_data.metrics.async_refresh_containers()
        await cluster.faults.clear()  # the container is stopped: no port to refuse
        if swap_on_request:
            reply = await request
            assert reply.model == cluster.config.served_model
        else:
            with pytest.raises(openai.APIStatusError) as info:
                await request
            assert info.value.status_code == 503
            assert info.value.body["code"] == "vllm_stopped"  # type: ignore[index]
    launches = [c for c in cluster.nodes[0].commands if "vllm serve" in c]
    assert len(launches) == (1 if swap_on_request else 0)


async def test_home_assistant_lost_during_the_swap_call_is_said_in_words(
    hass: HomeAssistant,
    start_swapping: GatewayFactory,
    link: CuttableLink,
) -> None:
    """The connection carrying the swap action drops while the swap loads: the request's 502
    says so in words (it held the exception's repr: "(HaConnectionLost('...'))"), and that the
    swap may go on in Home Assistant, as it does."""
    gateway = await start_swapping(ha_url=str(await link.start()))
    loading = _swap_loading(hass)
    finished = asyncio.Event()
    hass.bus.async_listen(EVENT_SWAP_FINISHED, callback(lambda _event: finished.set()))
    async with _openai(gateway) as client:
        request = asyncio.ensure_future(
            client.chat.completions.create(model=TARGET, messages=HI, max_tokens=3)
        )
        await _until(loading)
        link.cut()
        with pytest.raises(openai.APIStatusError) as failed:
            await request
    message = _swap_failed_message(failed.value)
    assert message.startswith(
        "could not swap vLLM to 'gemma4': lost Home Assistant's WebSocket API during the swap "
        "request (Home Assistant closed the WebSocket connection); the swap may still go on in "
        "Home Assistant"
    ), message
    await _until(finished)
    assert _select_key(hass) == TARGET
