"""vLLM's own watch: finds an engine that is alive but not serving, between the deep checks.

Three sources, each feeding the entry's recovery (`recovery.py`), so a find ends in the same
budgeted relaunch, events, logbook lines and repair issue as a wedge report:

- the **cheap probe**: a one-token completion with a short timeout on its own schedule; a
  failure is confirmed by the full deep probe before anything is restarted;
- **frozen generation**: `/metrics` every few seconds; requests running while no token is
  generated or prefilled for the freeze window, with the GPU at idle power, is a freeze;
- **engine death**: the vLLM container's log is followed while vLLM serves; an engine-death
  line is a wedge at once (a dead engine's `/health` may say 503, which a probe would take
  for a model load).

None of them looks while a swap or a load runs (vLLM is down on purpose then), nor while the
recovery is already checking or relaunching vLLM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import (
    CONF_VLLM_FREEZE_WINDOW,
    CONF_VLLM_LOG_WATCH,
    CONF_VLLM_PROBE_INTERVAL,
    CONF_VLLM_PROBE_TIMEOUT,
    DEFAULT_VLLM_FREEZE_WINDOW,
    DEFAULT_VLLM_LOG_WATCH,
    DEFAULT_VLLM_PROBE_INTERVAL,
    DEFAULT_VLLM_PROBE_TIMEOUT,
    DOMAIN,
    LOGGER,
    SERVICE_VLLM,
)
from .sparklib.errors import ServiceUnreachable, SparkError
from .sparklib.metrics import parse_vllm_metrics
from .sparklib.recovery import ServiceHealth
from .sparklib.vllm_watch import FreezeDetector, engine_death

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .coordinator import SparkControlConfigEntry
    from .recovery import SparkRecovery

# `/metrics` is read this often for the freeze watch: a freeze is found at most this long
# after its window (the exposition text is filtered to the few families read before parsing).
FREEZE_SCRAPE_INTERVAL = timedelta(seconds=2)
LOG_RETRY_SECONDS = 5.0  # pause before following again after a follow ended
SOURCE_CHEAP_PROBE = "vllm_probe"
SOURCE_FROZEN = "frozen_generation"
SOURCE_LOG = "container_log"


@dataclass(frozen=True, kw_only=True)
class VllmWatchSettings:
    """The options of the watch (0 turns the probe or the freeze watch off)."""

    probe_interval: float
    probe_timeout: float
    freeze_window: float
    log_watch: bool

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> VllmWatchSettings:
        """Read the entry's options, clamped: options edited by hand must not break setup."""
        return cls(
            probe_interval=max(
                0.0, float(options.get(CONF_VLLM_PROBE_INTERVAL, DEFAULT_VLLM_PROBE_INTERVAL))
            ),
            probe_timeout=max(
                1.0, float(options.get(CONF_VLLM_PROBE_TIMEOUT, DEFAULT_VLLM_PROBE_TIMEOUT))
            ),
            freeze_window=max(
                0.0, float(options.get(CONF_VLLM_FREEZE_WINDOW, DEFAULT_VLLM_FREEZE_WINDOW))
            ),
            log_watch=bool(options.get(CONF_VLLM_LOG_WATCH, DEFAULT_VLLM_LOG_WATCH)),
        )


class VllmWatch:
    """The cheap probe, the freeze watch and the log follower of one cluster entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SparkControlConfigEntry,
        recovery: SparkRecovery,
        settings: VllmWatchSettings,
    ) -> None:
        """Nothing runs until `async_start`."""
        self.hass = hass
        self.entry = entry
        self.recovery = recovery
        self.settings = settings
        self.freeze = FreezeDetector(settings.freeze_window or 1.0)
        self._clock = 0.0  # seconds on the freeze watch's clock (see _scrape_tick)
        self._unsubscribers: list[CALLBACK_TYPE] = []
        self._busy: set[str] = set()  # the scrape / probe in flight (never two of one kind)
        self._serving_changed = asyncio.Event()
        self._log_task: asyncio.Task[None] | None = None
        self._unlisten_stop: CALLBACK_TYPE | None = None

    def quiet(self) -> bool:
        """Whether vLLM must not be judged now: a swap or load runs (vLLM is down on purpose),
        or recovery is already checking or relaunching it."""
        return self.entry.runtime_data.swap.running or self.recovery.manager.checking(SERVICE_VLLM)

    def serving(self) -> bool:
        """Whether vLLM answers its health endpoint and nothing makes it quiet."""
        status = self.entry.runtime_data.status.data
        return status is not None and status.healthy(SERVICE_VLLM) and not self.quiet()

    @callback
    def async_start(self) -> None:
        """Start the timers and the log follower the options ask for."""
        name = self.entry.title
        if self.settings.probe_interval > 0:
            self._unsubscribers.append(
                async_track_time_interval(
                    self.hass,
                    self._probe_tick,
                    timedelta(seconds=self.settings.probe_interval),
                    name=f"{DOMAIN} vLLM probe {name}",
                    cancel_on_shutdown=True,
                )
            )
        if self.settings.freeze_window > 0:
            self._unsubscribers.append(
                async_track_time_interval(
                    self.hass,
                    self._scrape_tick,
                    FREEZE_SCRAPE_INTERVAL,
                    name=f"{DOMAIN} vLLM freeze watch {name}",
                    cancel_on_shutdown=True,
                )
            )
        if self.settings.log_watch:
            for coordinator in (self.entry.runtime_data.status, self.entry.runtime_data.swap):
                self._unsubscribers.append(
                    coordinator.async_add_listener(self._serving_changed.set)
                )
            # A plain task, owned and cancelled here: it runs for the entry's lifetime, so HA's
            # background-task tracking (which tests and shutdown wait on) must not hold it.
            self._log_task = self.hass.loop.create_task(
                self._follow_log(), name=f"{DOMAIN} vLLM log watch {name}"
            )
            self._unlisten_stop = self.hass.bus.async_listen_once(
                EVENT_HOMEASSISTANT_STOP, self._stop_log
            )

    def as_diagnostics(self) -> dict[str, Any]:
        """The watch's settings, for the entry's diagnostics."""
        return {
            "probe_interval_s": self.settings.probe_interval,
            "probe_timeout_s": self.settings.probe_timeout,
            "freeze_window_s": self.settings.freeze_window,
            "log_watch": self.settings.log_watch,
        }

    @callback
    def _stop_log(self, _event: Event) -> None:
        """HA stops without unloading the entry: end the follow (and its SSH session)."""
        self._unlisten_stop = None  # a listener heard once is gone by itself
        if self._log_task is not None:
            self._log_task.cancel()

    async def async_stop(self) -> None:
        """Stop the timers and the log follower."""
        while self._unsubscribers:
            self._unsubscribers.pop()()
        if self._unlisten_stop is not None:
            self._unlisten_stop()
            self._unlisten_stop = None
        task, self._log_task = self._log_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _run(self, kind: str, work: Coroutine[Any, Any, None]) -> None:
        """Run one scrape or probe at a time; a tick that finds one still running is skipped."""
        if kind in self._busy:
            work.close()
            return
        self._busy.add(kind)

        async def guarded() -> None:
            try:
                await work
            finally:
                self._busy.discard(kind)

        self.entry.async_create_background_task(
            self.hass, guarded(), f"{DOMAIN} vLLM {kind} {self.entry.title}"
        )

    # The cheap probe.

    @callback
    def _probe_tick(self, _now: datetime) -> None:
        if self.serving():
            self._run("probe", self._cheap_probe())

    async def _cheap_probe(self) -> None:
        result = await self.recovery.prober.probe(SERVICE_VLLM, timeout=self.settings.probe_timeout)
        if result.health is not ServiceHealth.WEDGED or self.quiet():
            return
        LOGGER.debug("%s: vLLM probe failed (%s); deep check", self.entry.title, result.detail)
        # A short timeout can be a long queue: the full deep probe decides.
        await self.recovery.async_run_deep_check([SERVICE_VLLM], source=SOURCE_CHEAP_PROBE)

    # The freeze watch.

    @callback
    def _scrape_tick(self, _now: datetime) -> None:
        # The window is measured on the watch's own clock, one scrape interval per tick: the
        # same as wall time while HA runs, and what HA's time-changed tests can move.
        self._clock += FREEZE_SCRAPE_INTERVAL.total_seconds()
        if self.quiet():
            self.freeze.reset()  # a new vLLM starts its counters from zero
            return
        self._run("scrape", self._scrape(self._clock))

    def _note_idle_power(self) -> None:
        """Learn the GPU's idle power from the metrics poll's nvidia-smi readings."""
        metrics = self.entry.runtime_data.metrics.data
        with contextlib.suppress(SparkError):
            node = self.entry.runtime_data.client.node_for(SERVICE_VLLM).name
            # No data before the first slow poll.
            for gpu in metrics.gpus.get(node, []) if metrics is not None else []:
                self.freeze.note_power(gpu.power_w)

    async def _scrape(self, at: float) -> None:
        try:
            text = await self.entry.runtime_data.client.api.vllm_metrics_text()
            sample = parse_vllm_metrics(text, now=at)
        except (ServiceUnreachable, SparkError):
            self.freeze.reset()
            return
        self._note_idle_power()
        stall = self.freeze.observe(sample, at)
        if stall is None:
            return
        try:
            power = await self.entry.runtime_data.client.vllm_gpu_power()
        except SparkError:
            power = None
        if self.freeze.gpu_working(power):
            LOGGER.debug(
                "%s: no vLLM token for %.0f s but the GPU draws %s W: a long prefill",
                self.entry.title,
                stall.seconds,
                power,
            )
            self.freeze.excuse(at)
            return
        if self.quiet():
            return
        self.freeze.reset()
        await self.recovery.async_report_confirmed_wedge(
            SERVICE_VLLM, stall.describe(power), SOURCE_FROZEN
        )

    # The log follower.

    async def _wait_until_serving(self) -> None:
        while not self.serving():
            await self._serving_may_have_changed()

    async def _serving_may_have_changed(self) -> None:
        """Until a running recovery check ends, the status or the swap changes, or a pause
        passed."""
        self._serving_changed.clear()
        if self.recovery.manager.checking(SERVICE_VLLM):
            await self.recovery.manager.check_finished(SERVICE_VLLM)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOG_RETRY_SECONDS):
                await self._serving_changed.wait()

    async def _follow_log(self) -> None:
        """Follow the log while vLLM serves; after a death line, a stop or a swap, wait until it
        serves again (a relaunched vLLM is followed from its own start)."""
        client = self.entry.runtime_data.client
        while True:
            await self._wait_until_serving()
            since = dt_util.utcnow()
            death: str | None = None
            try:
                async for line in client.vllm_log(since):
                    if self.quiet():
                        break  # the swap follows its own log; ours resumes after it
                    if (death := engine_death(line)) is not None:
                        break
            except SparkError as err:
                LOGGER.debug("%s: following vLLM's log failed: %s", self.entry.title, err)
            if death is not None and not self.quiet():
                # Returns once the relaunched vLLM is checked: follow it from its own start.
                await self.recovery.async_report_confirmed_wedge(
                    SERVICE_VLLM, f"engine died: {death}", SOURCE_LOG
                )
                continue
            # The follow ended (container stopped, connection lost): look again when the
            # status or the swap changes, or after a pause.
            await self._serving_may_have_changed()
