"""Self-healing of the GPU services: deep checks, wedge reports, restarts, events and repairs.

The policy lives in `sparklib.recovery` (no HA import); this module wires it to Home Assistant:
wedge reports arrive as bus events, checks also run on a timer and on demand, the restart
budget is persisted per entry in HA storage, every step is fired as an event, and a repair
issue explains a suppressed restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store

from .const import (
    CONF_DEEP_CHECK_INTERVAL,
    CONF_PROBE_TIMEOUT,
    CONF_RESTART_LIMIT,
    CONF_RESTART_WINDOW,
    CONF_VLLM_RELAUNCH_ON_EXIT,
    CONF_VLLM_RESTART_LIMIT,
    CONF_VLLM_RESTART_WINDOW,
    DEFAULT_DEEP_CHECK_INTERVAL,
    DEFAULT_PROBE_TIMEOUT,
    DEFAULT_RESTART_LIMIT,
    DEFAULT_RESTART_WINDOW,
    DEFAULT_VLLM_RELAUNCH_ON_EXIT,
    DEFAULT_VLLM_RESTART_LIMIT,
    DEFAULT_VLLM_RESTART_WINDOW,
    DOMAIN,
    EVENT_RESTART_FAILED,
    EVENT_RESTART_SUPPRESSED,
    EVENT_SERVICE_RECOVERED,
    EVENT_SERVICE_RESTARTED,
    EVENT_WEDGE_DETECTED,
    EVENT_WEDGE_REPORT,
    LOGGER,
    SERVICE_VLLM,
    SERVICES,
)
from .entity import logbook_entity
from .report_routing import report_is_for
from .service_control import async_service_action
from .sparklib.probes import DeepProber
from .sparklib.recovery import (
    EventKind,
    RecoveryEvent,
    RecoveryManager,
    RecoveryOutcome,
    RecoveryTuning,
    RestartBudget,
    ServiceRecoveryState,
)
from .vllm_exit import VllmExitWatch
from .vllm_watch import VllmWatch, VllmWatchSettings

if TYPE_CHECKING:
    from .coordinator import SparkControlConfigEntry
    from .sparklib.cluster import ClusterClient

STORAGE_VERSION = 1
PROBE_CLIP = Path(__file__).parent / "probe_clip.wav"
MAX_REPORTED_ERROR = 500  # characters of a client's error text kept in events
# While a service is wedged (restart suppressed or failed), look again this often: a manual
# restart or a freed budget slot is then noticed within a minute, even with periodic checks off.
FOLLOW_UP_INTERVAL = timedelta(minutes=1)

EVENT_TYPES: dict[EventKind, str] = {
    "wedge_detected": EVENT_WEDGE_DETECTED,
    "service_restarted": EVENT_SERVICE_RESTARTED,
    "restart_suppressed": EVENT_RESTART_SUPPRESSED,
    "restart_failed": EVENT_RESTART_FAILED,
    "service_recovered": EVENT_SERVICE_RECOVERED,
}

WEDGE_REPORT_SCHEMA = vol.Schema(
    {
        vol.Required("service"): vol.In(SERVICES),
        vol.Optional("error", default=""): vol.All(
            vol.Coerce(str), lambda text: text[:MAX_REPORTED_ERROR]
        ),
        vol.Optional("source", default="unknown"): vol.All(vol.Coerce(str), vol.Length(max=64)),
        vol.Optional("entry_id"): str,
        # The service's URL as the gateway reaches it: names the cluster (report_routing).
        vol.Optional("upstream"): vol.All(str, vol.Length(max=512)),
    },
    extra=vol.REMOVE_EXTRA,
)


def recovery_signal(entry: SparkControlConfigEntry) -> str:
    """Dispatcher signal sent whenever the recovery state of an entry changes."""
    return f"{DOMAIN}_{entry.entry_id}_recovery"


def suppressed_issue_id(entry: SparkControlConfigEntry, service: str) -> str:
    """Repair issue id for a service whose automatic restarts are exhausted."""
    return f"restart_suppressed_{entry.entry_id}_{service}"


def _read_probe_clip() -> bytes:
    return PROBE_CLIP.read_bytes()


class SparkRecovery:
    """The recovery of one cluster entry (kept in `entry.runtime_data.recovery`)."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SparkControlConfigEntry,
        prober: DeepProber,
        budget: RestartBudget,
        store: Store[dict[str, Any]],
    ) -> None:
        """Build the manager; nothing runs until `async_start`."""
        self.hass = hass
        self.entry = entry
        self.prober = prober
        self._store = store
        self._unsubscribers: list[CALLBACK_TYPE] = []
        # Wedges detected per service since the entry was added (0 reads as "never").
        self._wedges: dict[str, int] = dict.fromkeys(SERVICES, 0)

        async def restart(service: str) -> None:
            if await self._wait_for_vllm_start(service):
                # A start claimed since the check looked (while the budget was saved): it is
                # the relaunch.
                return
            # vLLM is relaunched through launch-cluster.sh with the model it served (the way a
            # swap loads it), under the swap claim so no swap runs into it.
            await async_service_action(entry, service, "restart", settle=False, wait=True)

        self.manager = RecoveryManager(
            services=SERVICES,
            prober=prober,
            restarter=restart,
            wait_for_restart=self._wait_for_vllm_start,
            budget=budget,
            on_event=self._announce,
            save_budget=self._save,
            on_change=self._state_changed,
            tuning=RecoveryTuning(),
            task_factory=self._create_task,
        )
        settings = VllmWatchSettings.from_options(entry.options)
        self.vllm_watch = VllmWatch(hass, entry, self, settings)
        self.vllm_exits = VllmExitWatch(
            hass,
            entry,
            self,
            relaunch=bool(
                entry.options.get(CONF_VLLM_RELAUNCH_ON_EXIT, DEFAULT_VLLM_RELAUNCH_ON_EXIT)
            ),
        )

    async def _wait_for_vllm_start(self, service: str) -> bool:
        """Wait for a swap or start of vLLM under way (the select's, an action's, the add-on
        gateway's start on request), bounded by the swap timeout; False at once if none runs.
        It relaunches vLLM, so recovery waits for it rather than being refused by its claim."""
        swap = self.entry.runtime_data.swap
        if service != SERVICE_VLLM or not swap.running:
            return False
        LOGGER.debug(
            "%s: vLLM is being swapped or started; recovery waits for it", self.entry.title
        )
        await swap.async_wait_idle()
        return True

    def _watched(self, services: Iterable[str]) -> list[str]:
        """The services automatic checks may look at now: never vLLM during a swap or load
        (it is down on purpose, and a restart would break the load)."""
        swapping = self.entry.runtime_data.swap.running
        return [s for s in services if not (s == SERVICE_VLLM and swapping)]

    def state(self, service: str) -> ServiceRecoveryState:
        """What recovery knows about `service`."""
        return self.manager.state(service)

    def wedges(self, service: str) -> int:
        """How many times `service` was found wedged since the entry was added."""
        return self._wedges.get(service, 0)

    def restarts_in_window(self, service: str) -> int:
        """Automatic restarts of `service` in the current window."""
        return self.manager.budget.used(service)

    def as_diagnostics(self) -> dict[str, Any]:
        """Recovery state for the entry's diagnostics (no secrets in it)."""
        budget = self.manager.budget
        services: dict[str, Any] = {}
        for service in SERVICES:
            state = self.manager.state(service)
            services[service] = {
                "wedged": state.wedged,
                "suppressed": state.suppressed,
                "last_wedge_at": state.last_wedge_at,
                "wedges": self.wedges(service),
                "checks": state.checks,
                "last_result": state.last_result.as_dict() if state.last_result else None,
                "restarts_in_window": budget.used(service),
                "checking": self.manager.checking(service),
            }
        return {
            "restart_limit": budget.limit,
            "restart_window_minutes": budget.window / 60,
            "probes_started": self.manager.probes_started,
            "services": services,
            "vllm_watch": self.vllm_watch.as_diagnostics(),
            "vllm_relaunch_on_exit": self.vllm_exits.relaunch,
        }

    def restore(self, saved: dict[str, Any] | None) -> None:
        """Bring back the last wedge times and wedge counts saved before a restart of Home
        Assistant."""
        last_wedges = (saved or {}).get("last_wedge")
        if isinstance(last_wedges, dict):
            for service, stamp in last_wedges.items():
                if service in SERVICES and isinstance(stamp, int | float):
                    self.manager.state(service).last_wedge_at = float(stamp)
                    # Saved before counts were kept: at least that one wedge happened.
                    self._wedges[service] = 1
        counts = (saved or {}).get("wedges")
        if isinstance(counts, dict):
            for service, count in counts.items():
                if service in SERVICES and isinstance(count, int) and count >= 0:
                    self._wedges[service] = count

    @callback
    def async_start(self, deep_check_minutes: float) -> None:
        """Listen for wedge reports, start the periodic deep checks and vLLM's own watches."""
        self.vllm_watch.async_start()
        self.vllm_exits.async_start()
        self._unsubscribers.append(
            self.hass.bus.async_listen(EVENT_WEDGE_REPORT, self._handle_wedge_report)
        )
        self._unsubscribers.append(
            async_track_time_interval(
                self.hass,
                self._follow_up_check,
                FOLLOW_UP_INTERVAL,
                name=f"{DOMAIN} wedged follow-up {self.entry.title}",
                cancel_on_shutdown=True,
            )
        )
        if deep_check_minutes > 0:
            self._unsubscribers.append(
                async_track_time_interval(
                    self.hass,
                    self._periodic_check,
                    timedelta(minutes=deep_check_minutes),
                    name=f"{DOMAIN} deep check {self.entry.title}",
                    cancel_on_shutdown=True,
                )
            )

    async def async_stop(self) -> None:
        """Stop listening, cancel running checks and write the budget out."""
        while self._unsubscribers:
            self._unsubscribers.pop()()
        await self.vllm_watch.async_stop()
        await self.vllm_exits.async_stop()
        await self.manager.aclose()
        await self._store.async_save(self._data_to_save())

    async def async_run_deep_check(
        self, services: Iterable[str], source: str = "manual"
    ) -> dict[str, RecoveryOutcome]:
        """Check the given services now (joining checks already running)."""
        wanted = list(dict.fromkeys(services))
        outcomes = await asyncio.gather(
            *(self.manager.deep_check(service, source) for service in wanted)
        )
        return dict(zip(wanted, outcomes, strict=True))

    async def async_report_confirmed_wedge(
        self, service: str, detail: str, source: str
    ) -> RecoveryOutcome | None:
        """Repair a service found wedged without a probe (vLLM's freeze or log watch); None
        when it must not be touched now (vLLM during a swap or load)."""
        if not self._watched([service]):
            return None
        return await self.manager.report_confirmed_wedge(service, detail, source)

    def _create_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        # Tied to the entry so an unload cancels whatever is still running.
        return self.entry.async_create_background_task(self.hass, coro, name)

    @callback
    def _handle_wedge_report(self, event: Event[dict[str, Any]]) -> None:
        try:
            report = WEDGE_REPORT_SCHEMA(dict(event.data))
        except vol.Invalid as err:
            LOGGER.warning("Ignoring a malformed wedge report %s: %s", event.data, err)
            return
        if not report_is_for(self.hass, self.entry, report):
            return
        if not self._watched([report["service"]]):
            LOGGER.debug("%s: wedge report for vLLM during a swap ignored", self.entry.title)
            return
        LOGGER.debug(
            "%s: wedge report for %s from %s", self.entry.title, report["service"], report["source"]
        )
        self._create_task(
            self.manager.report_wedge(report["service"], report["error"], report["source"]),
            f"{DOMAIN} wedge report {report['service']}",
        )

    @callback
    def _periodic_check(self, _now: datetime) -> None:
        self._create_task(
            self.async_run_deep_check(self._watched(SERVICES), source="periodic"),
            f"{DOMAIN} periodic deep check",
        )

    @callback
    def _follow_up_check(self, _now: datetime) -> None:
        wedged = [
            service
            for service in self._watched(SERVICES)
            if self.manager.state(service).wedged and not self.manager.checking(service)
        ]
        if wedged:
            self._create_task(
                self.async_run_deep_check(wedged, source="follow_up"),
                f"{DOMAIN} wedged follow-up check",
            )

    @callback
    def _announce(self, event: RecoveryEvent) -> None:
        if event.kind == "wedge_detected":
            # Counted before the event fires: an automation it triggers reads the new count.
            self._wedges[event.service] = self.wedges(event.service) + 1
            self._state_changed()
        data = {
            **event.data,
            "entry_id": self.entry.entry_id,
            "cluster": self.entry.title,
            # Recovery lines belong to the service's Wedged problem sensor.
            **logbook_entity(self.hass, self.entry, "binary_sensor", f"{event.service}_wedged"),
        }
        self.hass.bus.async_fire(EVENT_TYPES[event.kind], data)
        log = LOGGER.warning if event.kind != "service_recovered" else LOGGER.info
        log("%s: %s %s", self.entry.title, event.kind.replace("_", " "), event.data)
        if event.kind == "restart_suppressed":
            self._raise_issue(event)
        elif event.kind == "service_recovered":
            ir.async_delete_issue(self.hass, DOMAIN, suppressed_issue_id(self.entry, event.service))
        if event.kind == "wedge_detected":
            # Keep the count and the last wedge time across restarts even when no restart
            # follows.
            self._create_task(self._save(), f"{DOMAIN} save recovery state")

    def _raise_issue(self, event: RecoveryEvent) -> None:
        budget = self.manager.budget
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            suppressed_issue_id(self.entry, event.service),
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="restart_suppressed",
            translation_placeholders={
                "cluster": self.entry.title,
                "service": event.service,
                "limit": str(budget.limit_for(event.service)),
                "window": f"{budget.window_for(event.service) / 60:g}",
                "error": str(event.data.get("error", ""))[:200],
            },
        )

    @callback
    def _state_changed(self) -> None:
        async_dispatcher_send(self.hass, recovery_signal(self.entry))

    def _data_to_save(self) -> dict[str, Any]:
        return {
            "budget": self.manager.budget.to_dict(),
            "last_wedge": {
                service: self.manager.state(service).last_wedge_at
                for service in SERVICES
                if self.manager.state(service).last_wedge_at is not None
            },
            "wedges": {service: count for service, count in self._wedges.items() if count},
        }

    async def _save(self, _budget: dict[str, Any] | None = None) -> None:
        await self._store.async_save(self._data_to_save())


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.recovery.{entry_id}")


async def async_remove_recovery_store(hass: HomeAssistant, entry_id: str) -> None:
    """Forget a removed entry's restart budget (for `async_remove_entry`)."""
    await _store(hass, entry_id).async_remove()


async def async_create_recovery(
    hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
) -> SparkRecovery:
    """Build the entry's recovery with its persisted budget and last wedges; nothing runs
    until `async_start_recovery`."""
    options = entry.options
    store = _store(hass, entry.entry_id)
    saved = await store.async_load()
    budget = RestartBudget.from_dict(
        (saved or {}).get("budget"),
        # Clamped: options edited by hand must not keep the whole entry from loading.
        limit=max(0, int(options.get(CONF_RESTART_LIMIT, DEFAULT_RESTART_LIMIT))),
        window=max(1.0, float(options.get(CONF_RESTART_WINDOW, DEFAULT_RESTART_WINDOW))) * 60,
        # vLLM has its own, more careful budget: each restart reloads the model for minutes.
        per_service={
            SERVICE_VLLM: (
                max(0, int(options.get(CONF_VLLM_RESTART_LIMIT, DEFAULT_VLLM_RESTART_LIMIT))),
                max(
                    1.0,
                    float(options.get(CONF_VLLM_RESTART_WINDOW, DEFAULT_VLLM_RESTART_WINDOW)),
                )
                * 60,
            )
        },
    )
    clip = await hass.async_add_executor_job(_read_probe_clip)
    prober = client.deep_prober(
        clip_wav=clip,
        timeout=max(1.0, float(options.get(CONF_PROBE_TIMEOUT, DEFAULT_PROBE_TIMEOUT))),
    )
    recovery = SparkRecovery(hass, entry, prober, budget, store)
    recovery.restore(saved)
    return recovery


@callback
def async_start_recovery(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Start watching the cluster's services and repairing wedges."""
    minutes = float(entry.options.get(CONF_DEEP_CHECK_INTERVAL, DEFAULT_DEEP_CHECK_INTERVAL))
    entry.runtime_data.recovery.async_start(minutes)
    async_dispatcher_send(hass, recovery_signal(entry))
