"""Start, stop or restart a service's container: the one helper behind the buttons, the
switches, the actions and the automatic restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .const import SERVICE_VLLM
from .sparklib.commands import DockerAction

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry


async def async_service_action(
    entry: SparkControlConfigEntry, service: str, action: DockerAction, *, settle: bool = True
) -> None:
    """`docker start|stop|restart` the service's container, then settle the entities.

    vLLM is refused while a swap runs (the swap stops and launches it itself; acting on it
    under the swap would break the load): a translated `swap_in_progress` error. Library
    errors pass through for the caller's error policy. `settle=False` skips the re-reads
    (recovery watches the restarted service come back itself).
    """
    runtime = entry.runtime_data
    if service == SERVICE_VLLM:
        runtime.swap.ensure_idle()
    await runtime.client.service_action(service, action)
    if settle:
        # The running switches (docker ps) and the health entities show the outcome now.
        await runtime.metrics.async_refresh_containers()
        await runtime.status.async_refresh()
