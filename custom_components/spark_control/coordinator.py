"""Runtime data and data update coordinators of a Spark Control cluster entry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, NoReturn

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CONF_METRICS_INTERVAL,
    CONF_POLL_INTERVAL,
    DEFAULT_METRICS_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    DOMAIN,
    LOGGER,
    SERVICE_MAGPIE,
    SERVICE_PARAKEET,
    SERVICE_VLLM,
)
from .errors import async_handle_key_error, setup_error
from .sparklib.cluster import ClusterClient
from .sparklib.containers import ContainerInfo
from .sparklib.errors import AuthRejected, HostKeyChanged, ServiceUnreachable, SparkError
from .sparklib.gpu import GpuStats
from .sparklib.http_api import ServiceApi, VllmState
from .sparklib.metrics import MetricsTracker, VllmMetrics, parse_vllm_metrics
from .sparklib.node_info import NodeFacts

if TYPE_CHECKING:
    from .catalog_store import CatalogStore
    from .operations import OperationsData
    from .recovery import SparkRecovery
    from .swap_control import SparkSwapCoordinator
    from .swap_history import SwapHistory
    from .voice import VoiceService

type SparkControlConfigEntry = ConfigEntry[SparkControlRuntimeData]


@dataclass(kw_only=True)
class SparkControlRuntimeData:
    """Everything a loaded cluster entry holds while it runs.

    Built completely before the platforms are set up; `voice` is None while the bridges are
    off or cannot listen.
    """

    client: ClusterClient
    status: SparkStatusCoordinator
    metrics: SparkMetricsCoordinator
    catalog: CatalogStore
    swap: SparkSwapCoordinator
    recovery: SparkRecovery
    voice: VoiceService | None = None
    # Host name, GPU and driver per node key, read once at setup for the node devices.
    node_facts: dict[str, NodeFacts] = field(default_factory=dict)
    operations: OperationsData | None = None  # downloads, disks, software update
    swap_history: SwapHistory | None = None  # previous load time per model (swap_history.py)


@dataclass(frozen=True, kw_only=True)
class ClusterStatus:
    """What the fast poll saw; None means the service did not answer at all."""

    vllm: VllmState | None
    parakeet_healthy: bool | None
    magpie_ready: bool | None
    # vLLM's port refused the connection: no server listens (stopped, or exited while its
    # `sleep infinity` container runs on).
    vllm_refused: bool = False

    def reachable(self, service: str) -> bool:
        """Whether the service answered its health endpoint (healthy or not)."""
        value: object = {
            SERVICE_VLLM: self.vllm,
            SERVICE_PARAKEET: self.parakeet_healthy,
            SERVICE_MAGPIE: self.magpie_ready,
        }[service]
        return value is not None

    def healthy(self, service: str) -> bool:
        """Whether the service is up and ready for traffic."""
        if service == SERVICE_VLLM:
            return self.vllm is not None and self.vllm.healthy
        if service == SERVICE_PARAKEET:
            return bool(self.parakeet_healthy)
        return bool(self.magpie_ready)


@dataclass(frozen=True, kw_only=True)
class ClusterMetrics:
    """What the slow poll saw; None means that source could not be read this time."""

    vllm: VllmMetrics | None
    gpus: dict[str, list[GpuStats]] = field(default_factory=dict)
    # service -> its container from `docker ps` (None: no such container); None: unreadable.
    containers: dict[str, ContainerInfo | None] | None = None

    def container_running(self, service: str) -> bool | None:
        """Whether the service's container runs; None when the states could not be read."""
        if self.containers is None:
            return None
        info = self.containers.get(service)
        return info is not None and info.running


async def _answer_or_none[T](service: str, call: Callable[[], Awaitable[T]]) -> T | None:
    """Return None when a service does not answer, so one dead service spares the others."""
    try:
        return await call()
    except ServiceUnreachable:
        return None


async def _vllm_poll(api: ServiceApi) -> tuple[VllmState | None, bool]:
    """vLLM's state (None when it does not answer), and whether its port refused us."""
    try:
        return await api.vllm_state(), False
    except ServiceUnreachable as error:
        return None, error.refused


class _AvailabilityLog:
    """Log a service going away once, and once more when it comes back."""

    def __init__(self, cluster: str) -> None:
        self._cluster = cluster
        self._down: set[str] = set()

    def note(self, service: str, reachable: bool) -> None:
        if not reachable and service not in self._down:
            self._down.add(service)
            LOGGER.info("%s: %s is unreachable", self._cluster, service)
        elif reachable and service in self._down:
            self._down.discard(service)
            LOGGER.info("%s: %s is reachable again", self._cluster, service)


class SparkStatusCoordinator(DataUpdateCoordinator[ClusterStatus]):
    """Fast poll of the services' HTTP health endpoints (keep-alive, HA's shared session)."""

    config_entry: SparkControlConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
    ) -> None:
        self.client = client
        self._availability = _AvailabilityLog(entry.title)
        # The catalog key of the model vLLM served last: kept while it is stopped or down (the
        # model select restores it across restarts of Home Assistant). What recovery relaunches
        # and what the add-on gateway starts for `current`.
        self.last_served_key: str | None = None
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} status",
            update_interval=timedelta(
                seconds=entry.options.get(CONF_POLL_INTERVAL, DEFAULT_POLL_INTERVAL)
            ),
            # Most polls see the same state: skip the entity writes when nothing changed.
            always_update=False,
        )

    async def _async_update_data(self) -> ClusterStatus:
        api = self.client.api
        try:
            (vllm, refused), parakeet, magpie = await asyncio.gather(
                _vllm_poll(api),
                _answer_or_none(SERVICE_PARAKEET, api.parakeet_healthy),
                _answer_or_none(SERVICE_MAGPIE, api.magpie_ready),
            )
        except SparkError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="communication_error",
                translation_placeholders={"error": str(error)},
            ) from error
        status = ClusterStatus(
            vllm=vllm, parakeet_healthy=parakeet, magpie_ready=magpie, vllm_refused=refused
        )
        for service in (SERVICE_VLLM, SERVICE_PARAKEET, SERVICE_MAGPIE):
            self._availability.note(service, status.reachable(service))
        if (served := self.served_key(status)) is not None:
            self.last_served_key = served
        return status

    def served_key(self, status: ClusterStatus | None = None) -> str | None:
        """The catalog key of the model vLLM serves (in `status`, else the last poll's); None
        when nothing is served or the model is not in the catalog."""
        status = status if status is not None else self.data
        vllm = status.vllm if status is not None else None
        if vllm is None or not vllm.models:
            return None
        entry = self.config_entry.runtime_data.catalog.catalog.find_by_repo_id(vllm.models[0])
        return entry.key if entry is not None else None


class SparkMetricsCoordinator(DataUpdateCoordinator[ClusterMetrics]):
    """Slow poll of vLLM's Prometheus metrics, every node's nvidia-smi and the containers."""

    config_entry: SparkControlConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: SparkControlConfigEntry, client: ClusterClient
    ) -> None:
        self.client = client
        self._tracker = MetricsTracker()
        self._availability = _AvailabilityLog(entry.title)
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} metrics",
            update_interval=timedelta(
                seconds=entry.options.get(CONF_METRICS_INTERVAL, DEFAULT_METRICS_INTERVAL)
            ),
        )

    async def _read_vllm(self) -> VllmMetrics | None:
        text = await _answer_or_none(SERVICE_VLLM, self.client.api.vllm_metrics_text)
        if text is None:
            return None
        # Parsing a few KB of exposition text is cheap enough for the loop.
        return self._tracker.update(parse_vllm_metrics(text))

    def _raise_for_key_error(self, error: HostKeyChanged | AuthRejected) -> NoReturn:
        """A changed host key or a rejected key is never just "unavailable": it raises the
        repair issue / reauth even when the other nodes answer (after the first load through
        a reload whose setup shows the fix)."""
        async_handle_key_error(self.hass, self.config_entry, error)
        if self.config_entry.state is not ConfigEntryState.LOADED or isinstance(
            error, AuthRejected
        ):
            raise setup_error(error) from error
        raise UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="communication_error",
            translation_placeholders={"error": str(error)},
        ) from error

    async def _read_containers(self) -> dict[str, ContainerInfo | None] | None:
        """Every service's container from `docker ps` (one command per node, over the kept
        connection); None when a node cannot be asked right now."""
        try:
            containers = await self.client.containers()
        except (HostKeyChanged, AuthRejected) as error:
            self._raise_for_key_error(error)
        except SparkError:
            self._availability.note("docker ps", reachable=False)
            return None
        self._availability.note("docker ps", reachable=True)
        return containers

    async def async_refresh_containers(self) -> None:
        """Read the container states now (after a start/stop), keeping the other readings,
        so the running switches settle at once instead of at the next slow poll."""
        containers = await self._read_containers()
        if self.data is not None:
            self.async_set_updated_data(replace(self.data, containers=containers))

    async def async_vllm_relaunched(self) -> None:
        """vLLM runs a new process (a swap ended): forget the figures of the one before
        (token rates, time to first token) and read everything now, so the sensors show
        the new model's figures and the nodes' memory at once, not at the next slow poll."""
        self._tracker.reset()
        await self.async_refresh()

    async def _read_gpus(self, node: str) -> list[GpuStats] | None:
        """One node's nvidia-smi; None when the node cannot be reached right now."""
        try:
            gpus = await self.client.node_gpus(node)
        except (HostKeyChanged, AuthRejected) as error:
            self._raise_for_key_error(error)
        except SparkError:
            self._availability.note(f"node {node}", reachable=False)
            return None
        self._availability.note(f"node {node}", reachable=True)
        return gpus

    async def _async_update_data(self) -> ClusterMetrics:
        nodes = list(self.client.nodes)
        vllm, readings, containers = await asyncio.gather(
            self._read_vllm(),
            asyncio.gather(*(self._read_gpus(node) for node in nodes)),
            self._read_containers(),
        )
        gpus = {
            node: stats for node, stats in zip(nodes, readings, strict=True) if stats is not None
        }
        if not gpus and vllm is None and containers is None:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cluster_unreachable",
            )
        return ClusterMetrics(vllm=vllm, gpus=gpus, containers=containers)
