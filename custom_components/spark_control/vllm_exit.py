"""vLLM's exit watch: a server that exits on its own while serving is announced and relaunched.

On spark-vllm-docker vLLM is a process inside a container that runs `sleep infinity`; when the
kernel's OOM killer or a segfault ends it, the container runs on and the log may say nothing:
only its port refuses. The watch follows the fast health poll. vLLM seen serving, then
refusing, with no stop, swap, start or recovery asked for meanwhile, is looked at on its node
(`docker top`): its container running without a `vllm serve` process is an exit. That fires
`spark_control_vllm_exited` (a logbook line) and, unless the options turn it off, hands vLLM
to recovery (`recovery.py`), which relaunches the model it served within vLLM's restart
budget, or raises the repair issue when the budget is spent.

A port refused while the server process still runs, or with the container gone (a stop), is
no exit: nothing happens.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback

from .const import DOMAIN, EVENT_VLLM_EXITED, LOGGER, SERVICE_VLLM
from .entity import logbook_entity
from .sparklib.errors import SparkError

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry
    from .recovery import SparkRecovery

SOURCE_EXITED = "server_exited"
EXIT_DETAIL = "vLLM's server exited while serving, with nothing in its log"


class VllmExitWatch:
    """Watches one cluster entry's vLLM for a server that exits while serving."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SparkControlConfigEntry,
        recovery: SparkRecovery,
        *,
        relaunch: bool,
    ) -> None:
        """Nothing runs until `async_start`; `relaunch` is the option of that name."""
        self.hass = hass
        self.entry = entry
        self.recovery = recovery
        self.relaunch = relaunch
        # vLLM was seen serving since the last stop, swap, start, recovery or exit: only then
        # does a refused port mean it went away on its own.
        self._armed = False
        self._stops = 0  # stops asked for so far: one during a look at the node voids it
        self._unsubscribers: list[CALLBACK_TYPE] = []
        self._task: asyncio.Task[None] | None = None

    @callback
    def async_start(self) -> None:
        """Follow the health poll and the swaps."""
        runtime = self.entry.runtime_data
        for coordinator in (runtime.status, runtime.swap):
            self._unsubscribers.append(coordinator.async_add_listener(self._changed))
        self._changed()

    async def async_stop(self) -> None:
        """Stop following and end a look at the node under way."""
        while self._unsubscribers:
            self._unsubscribers.pop()()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    @callback
    def user_stopped(self) -> None:
        """vLLM is being stopped on request (switch, button, action): its going is no exit."""
        self._armed = False
        self._stops += 1

    def _quiet(self) -> bool:
        """vLLM is down on purpose (a swap or start) or recovery already has it."""
        return self.entry.runtime_data.swap.running or self.recovery.manager.checking(SERVICE_VLLM)

    @callback
    def _changed(self) -> None:
        if self.entry.runtime_data.swap.running:
            self._armed = False  # down on purpose; a load that dies is the swap's failure
            return
        status = self.entry.runtime_data.status.data
        if status.healthy(SERVICE_VLLM):
            self._armed = True
        elif self._armed and status.vllm_refused:
            self._armed = False
            if self.recovery.manager.checking(SERVICE_VLLM):
                return  # recovery has it already (an engine death in the log, a probe)
            if self._task is None or self._task.done():
                self._task = self.entry.async_create_background_task(
                    self.hass, self._look(self._stops), f"{DOMAIN} vLLM exit {self.entry.title}"
                )

    async def _look(self, stops: int) -> None:
        """Ask the node whether vLLM's server still runs; announce and relaunch an exit."""
        try:
            running = await self.entry.runtime_data.client.vllm_server_running()
        except SparkError as err:
            LOGGER.debug("%s: could not list vLLM's processes: %s", self.entry.title, err)
            return
        if running is not False or stops != self._stops or self._quiet():
            # Still running (its port refused for another reason), its container gone with a
            # stop, or a stop, swap or start since: not an exit.
            return
        self._announce()
        if self.relaunch:
            await self.recovery.async_report_confirmed_wedge(
                SERVICE_VLLM, EXIT_DETAIL, SOURCE_EXITED
            )

    def _announce(self) -> None:
        data: dict[str, Any] = {
            "entry_id": self.entry.entry_id,
            "cluster": self.entry.title,
            "service": SERVICE_VLLM,
            "model": self.entry.runtime_data.swap.relaunch_model(),
            "relaunch": self.relaunch,
            # Beside recovery's lines: on vLLM's Wedged sensor.
            **logbook_entity(self.hass, self.entry, "binary_sensor", f"{SERVICE_VLLM}_wedged"),
        }
        LOGGER.warning(
            "%s: vLLM exited on its own while serving %s%s",
            self.entry.title,
            data["model"],
            "; relaunching it" if self.relaunch else "",
        )
        self.hass.bus.async_fire(EVENT_VLLM_EXITED, data)
