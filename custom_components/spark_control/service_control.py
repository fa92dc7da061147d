"""Start, stop or restart a service: the one helper behind the buttons, the switches, the
actions and the automatic restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .const import EVENT_VLLM_STOPPED, SERVICE_VLLM
from .entity import logbook_entity
from .sparklib.commands import DockerAction
from .sparklib.errors import ServiceUnreachable

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry


async def async_service_action(
    entry: SparkControlConfigEntry,
    service: str,
    action: DockerAction,
    *,
    settle: bool = True,
    wait: bool = False,
) -> None:
    """`docker start|stop|restart` the service's container, then settle the entities.

    vLLM is different (spark-vllm-docker): its container runs `sleep infinity` and vLLM is
    launched inside it, so a start or restart is a relaunch of the model it served through the
    swap's launch (`SparkSwapCoordinator.async_start_relaunch`): its progress shows on the swap
    sensor and the model select, and it runs in the background unless `wait`. A start finds
    nothing to do while a vLLM server holds its port (serving, loading, or not answering in
    time). Stop is `launch-cluster.sh stop`. Every vLLM action is refused while a swap or
    start runs (a translated `swap_in_progress`). Library errors pass through for the
    caller's error policy. `settle=False` skips the re-reads (recovery watches the restarted
    service come back itself).
    """
    runtime = entry.runtime_data
    if service == SERVICE_VLLM and action != "stop":
        runtime.swap.ensure_idle()
        if action == "start" and await _vllm_listens(entry):
            return
        if wait:
            await runtime.swap.async_relaunch()
        else:
            runtime.swap.async_start_relaunch()
        return
    if service == SERVICE_VLLM:
        runtime.swap.ensure_idle()
        runtime.recovery.vllm_exits.user_stopped()  # its port closing is no exit
    await runtime.client.service_action(service, action)
    if service == SERVICE_VLLM:
        # The model select (the dashboard's Swaps card) goes unknown: its line says why.
        hass = runtime.swap.hass
        hass.bus.async_fire(
            EVENT_VLLM_STOPPED,
            {
                "entry_id": entry.entry_id,
                "cluster": entry.title,
                "service": SERVICE_VLLM,
                "model": runtime.status.last_served_key,
                **logbook_entity(hass, entry, "select", "model"),
            },
        )
    if settle:
        # The running switches (docker ps) and the health entities show the outcome now.
        await runtime.metrics.async_refresh_containers()
        await runtime.status.async_refresh()


async def _vllm_listens(entry: SparkControlConfigEntry) -> bool:
    """Whether a vLLM server holds its port now: it answers, or takes the connection without
    answering in time (a real vLLM loading a model accepts connections it serves only once
    loaded). Only a refused connection means no server runs."""
    try:
        await entry.runtime_data.client.api.vllm_state()
    except ServiceUnreachable as error:
        return not error.refused
    return True
