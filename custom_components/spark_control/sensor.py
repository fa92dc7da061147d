"""Sensors: swap progress, vLLM serving metrics and per-node GPU readings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfInformation,
    UnitOfPower,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .cluster_config import nodes_of
from .const import SERVICE_VLLM
from .coordinator import (
    SparkControlConfigEntry,
    SparkMetricsCoordinator,
)
from .entity import SparkControlEntity, node_device, service_device
from .operations_entities import operations_sensors
from .recovery_entities import async_remove_retired_sensors, recovery_sensors
from .sparklib.gpu import GpuStats
from .sparklib.metrics import VllmMetrics
from .swap_control import SparkSwapCoordinator

PARALLEL_UPDATES = 0

SWAP_STATES = ["idle", "stopping", "starting", "loading", "ready", "failed"]


@dataclass(frozen=True, kw_only=True)
class SparkVllmSensorEntityDescription(SensorEntityDescription):
    """A reading from vLLM's Prometheus metrics."""

    value_fn: Callable[[VllmMetrics], StateType]
    exists_fn: Callable[[SparkControlConfigEntry], bool] = lambda _: True


@dataclass(frozen=True, kw_only=True)
class SparkGpuSensorEntityDescription(SensorEntityDescription):
    """A reading of one node's GPUs (summed or averaged when a node has several)."""

    value_fn: Callable[[list[GpuStats]], float | None]
    exists_fn: Callable[[SparkControlConfigEntry], bool] = lambda _: True
    # Only for nodes whose GPUs reported it when the entry was set up: a reading some GPUs
    # never have (a GB10 has no power cap) makes no entity that would stay unavailable.
    only_where_reported: bool = False


def _values(gpus: list[GpuStats], field: str) -> list[float]:
    return [value for gpu in gpus if (value := getattr(gpu, field)) is not None]


def _mean(field: str) -> Callable[[list[GpuStats]], float | None]:
    def read(gpus: list[GpuStats]) -> float | None:
        values = _values(gpus, field)
        return round(sum(values) / len(values), 1) if values else None

    return read


def _total(field: str) -> Callable[[list[GpuStats]], float | None]:
    def read(gpus: list[GpuStats]) -> float | None:
        values = _values(gpus, field)
        return round(sum(values), 1) if values else None

    return read


def _highest(field: str) -> Callable[[list[GpuStats]], float | None]:
    def read(gpus: list[GpuStats]) -> float | None:
        values = _values(gpus, field)
        return max(values) if values else None

    return read


def _memory_usage(gpus: list[GpuStats]) -> float | None:
    """Used share of the GPUs' memory (on GB10 the unified system memory)."""
    pairs = [
        (gpu.memory_used_mib, gpu.memory_total_mib)
        for gpu in gpus
        if gpu.memory_used_mib is not None and gpu.memory_total_mib
    ]
    if not pairs:
        return None
    return round(100 * sum(used for used, _ in pairs) / sum(total for _, total in pairs), 1)


def _generation_speed(metrics: VllmMetrics) -> float | None:
    """Tokens per second since the last poll. The first poll has no earlier count to
    compare with: then nothing running means nothing generated (0), not "unknown"."""
    if metrics.generation_tokens_per_s is None:
        return 0.0 if metrics.requests_running == 0 else None
    return round(metrics.generation_tokens_per_s, 2)


def _rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


VLLM_SENSORS: tuple[SparkVllmSensorEntityDescription, ...] = (
    SparkVllmSensorEntityDescription(
        key="generation_tokens_per_second",
        translation_key="generation_tokens_per_second",
        native_unit_of_measurement="tok/s",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=_generation_speed,
    ),
    SparkVllmSensorEntityDescription(
        key="requests_running",
        translation_key="requests_running",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda metrics: int(metrics.requests_running),
    ),
    SparkVllmSensorEntityDescription(
        key="requests_waiting",
        translation_key="requests_waiting",
        state_class=SensorStateClass.MEASUREMENT,
        # A queue only forms under load; "requests running" is the everyday figure.
        entity_registry_enabled_default=False,
        value_fn=lambda metrics: int(metrics.requests_waiting),
    ),
    SparkVllmSensorEntityDescription(
        key="kv_cache_usage",
        translation_key="kv_cache_usage",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda metrics: _rounded(metrics.kv_cache_usage_pct, 2),
    ),
    SparkVllmSensorEntityDescription(
        key="time_to_first_token",
        translation_key="time_to_first_token",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.MILLISECONDS,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        # The latest requests' median, kept while vLLM idles; unavailable until the model
        # it serves has answered a request (nothing measured yet).
        value_fn=lambda metrics: _rounded(metrics.ttft_median_s, 4),
    ),
)

GPU_SENSORS: tuple[SparkGpuSensorEntityDescription, ...] = (
    SparkGpuSensorEntityDescription(
        key="gpu_utilization",
        translation_key="gpu_utilization",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_mean("utilization_pct"),
    ),
    SparkGpuSensorEntityDescription(
        key="gpu_memory_used",
        translation_key="gpu_memory_used",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_total("memory_used_mib"),
    ),
    SparkGpuSensorEntityDescription(
        key="gpu_memory_usage",
        translation_key="gpu_memory_usage",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_memory_usage,
    ),
    SparkGpuSensorEntityDescription(
        key="gpu_temperature",
        translation_key="gpu_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_highest("temperature_c"),
    ),
    SparkGpuSensorEntityDescription(
        key="gpu_power",
        translation_key="gpu_power",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_total("power_w"),
    ),
    SparkGpuSensorEntityDescription(
        key="gpu_power_limit",
        translation_key="gpu_power_limit",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_total("power_limit_w"),
        only_where_reported=True,
    ),
)

SWAP_SENSOR = SensorEntityDescription(
    key="swap_status",
    translation_key="swap_status",
    device_class=SensorDeviceClass.ENUM,
    options=SWAP_STATES,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SparkControlConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the swap sensor, the vLLM metrics sensors and each node's GPU sensors."""
    runtime = entry.runtime_data
    entities: list[SensorEntity] = [SparkSwapSensor(runtime.swap)]
    entities.extend(
        SparkVllmSensor(runtime.metrics, description)
        for description in VLLM_SENSORS
        if description.exists_fn(entry)
    )
    first_gpus = runtime.metrics.data.gpus
    entities.extend(
        SparkGpuSensor(runtime.metrics, description, node)
        for node in nodes_of(entry.data)
        for description in GPU_SENSORS
        if description.exists_fn(entry)
        and (
            not description.only_where_reported
            or description.value_fn(first_gpus.get(node, [])) is not None
        )
    )
    async_remove_retired_sensors(hass, entry)
    entities.extend(recovery_sensors(entry))  # wedges, restarts in window (recovery)
    entities.extend(operations_sensors(entry))  # downloads, free disk space (operations)
    async_add_entities(entities)


class SparkSwapSensor(SparkControlEntity[SparkSwapCoordinator], SensorEntity):
    """Where the current (or last) swap is; pushed live by the swap coordinator."""

    entity_description = SWAP_SENSOR
    # The log tail changes with every line: keep it out of the recorder's database.
    _unrecorded_attributes = frozenset({"log_lines"})

    def __init__(self, coordinator: SparkSwapCoordinator) -> None:
        super().__init__(
            coordinator,
            key=SWAP_SENSOR.key,
            device_info=service_device(coordinator.config_entry, SERVICE_VLLM),
        )

    @property
    def native_value(self) -> str:
        """idle before the first swap, then the latest swap's status."""
        progress = self.coordinator.data.progress
        return progress.status if progress is not None else "idle"

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """Whether a swap runs, target model (key and display name), seconds since the start
        (the unit is in the name), the last vLLM log line and the last lines of the load log
        (live while loading).

        `running` is the swap's claim: true from the request (the phase may still read idle)
        until its events are fired (the phase reads ready while vLLM's model list confirms
        the load); the gateway waits for it to turn false before it asks for a swap."""
        running = self.coordinator.data.running
        progress = self.coordinator.data.progress
        if progress is None:
            return {
                "running": running,
                "target_model": None,
                "target_name": None,
                "elapsed_seconds": None,
                "expected_seconds": None,
                "last_log_line": None,
                "log_lines": [],
            }
        runtime = self.coordinator.config_entry.runtime_data
        history = runtime.swap_history
        catalog = runtime.catalog.catalog
        return {
            "running": running,
            "target_model": progress.model,
            # What the model select calls it (the key when it left the catalog).
            "target_name": catalog.get(progress.model).name
            if progress.model in catalog
            else progress.model,
            "elapsed_seconds": round(progress.elapsed, 1),
            # While it runs, the previous load of the same model: the dashboard's ETA.
            "expected_seconds": history.expected_seconds(progress.model)
            if history and progress.status not in ("ready", "failed")
            else None,
            "last_log_line": progress.last_line,
            "log_lines": list(progress.log_tail),
        }


class SparkVllmSensor(SparkControlEntity[SparkMetricsCoordinator], SensorEntity):
    """A vLLM metric; unavailable while vLLM's /metrics does not answer or has no figure
    for it yet (time to first token before the first request, say)."""

    entity_description: SparkVllmSensorEntityDescription

    def __init__(
        self, coordinator: SparkMetricsCoordinator, description: SparkVllmSensorEntityDescription
    ) -> None:
        super().__init__(
            coordinator,
            key=description.key,
            device_info=service_device(coordinator.config_entry, SERVICE_VLLM),
        )
        self.entity_description = description

    async def async_added_to_hass(self) -> None:
        """Also follow the fast health poll, so the reading goes unavailable as soon as
        vLLM stops answering instead of showing the last figures until the next slow poll."""
        await super().async_added_to_hass()
        status = self.coordinator.config_entry.runtime_data.status
        self.async_on_remove(status.async_add_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        """Only while vLLM serves and the last slow poll read this metric."""
        status = self.coordinator.config_entry.runtime_data.status
        return (
            super().available
            and status.data is not None
            and status.data.healthy(SERVICE_VLLM)
            and self.native_value is not None
        )

    @property
    def native_value(self) -> StateType:
        """The description's reading."""
        metrics = self.coordinator.data.vllm
        return self.entity_description.value_fn(metrics) if metrics is not None else None


class SparkGpuSensor(SparkControlEntity[SparkMetricsCoordinator], SensorEntity):
    """A GPU reading of one node; unavailable while nvidia-smi on that node fails, and where
    the node's driver reports `[N/A]` for it (some GPUs have no power or temperature sensor)."""

    entity_description: SparkGpuSensorEntityDescription

    def __init__(
        self,
        coordinator: SparkMetricsCoordinator,
        description: SparkGpuSensorEntityDescription,
        node: str,
    ) -> None:
        entry = coordinator.config_entry
        super().__init__(
            coordinator, key=f"{node}_{description.key}", device_info=node_device(entry, node)
        )
        self.entity_description = description
        self._node = node

    @property
    def available(self) -> bool:
        """Only when the last poll read this node's GPUs and they report this reading."""
        return super().available and self.native_value is not None

    @property
    def native_value(self) -> float | None:
        """The description's reading of this node's GPUs."""
        gpus = self.coordinator.data.gpus.get(self._node)
        return self.entity_description.value_fn(gpus) if gpus is not None else None
