"""The device tree as a user sees it: nodes by host name with GPU and driver, services with
versions, no empty devices, GB10 memory from /proc/meminfo, metrics gone with their service."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.sim import SimCluster
from tests.sim.commands.system_info import DRIVER_VERSION, MEM_TOTAL_KB
from tests.sim.vllm_service import VLLM_VERSION


async def test_devices_named_and_versioned(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Node devices carry the host name `uname -n` gives, the GPU from nvidia-smi and the
    driver; service devices their maker and version; every device has entities."""
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    entry_devices = dr.async_entries_for_config_entry(devices, loaded_entry.entry_id)
    by_name = {device.name: device for device in entry_devices}
    assert set(by_name) == {"spark-1", "spark-2", "Lab vLLM", "Lab Parakeet ASR", "Lab Magpie TTS"}
    for host in ("spark-1", "spark-2"):
        node = by_name[host]
        assert (node.manufacturer, node.model) == ("NVIDIA", "GB10")
        assert node.sw_version == f"Driver {DRIVER_VERSION}"
    vllm = by_name["Lab vLLM"]
    assert vllm.manufacturer == "vLLM project"
    assert vllm.sw_version == f"{VLLM_VERSION} (vllm-node:latest)"
    assert vllm.via_device_id == by_name["spark-1"].id
    assert by_name["Lab Magpie TTS"].sw_version == "magpie-tts-multilingual:latest"
    assert by_name["Lab Parakeet ASR"].manufacturer == "NVIDIA"
    for device in entry_devices:
        assert er.async_entries_for_device(entities, device.id), f"{device.name} has no entities"
    # Node entity ids follow the host name too.
    assert hass.states.get("sensor.spark_1_gpu_utilization") is not None


async def test_gb10_memory_from_meminfo(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """GB10 reports `[N/A]` framebuffer memory; the unified memory in /proc/meminfo (total
    minus available) stands in, with a usage percentage for gauges."""
    assert "cat /proc/meminfo" in sim.nodes[0].commands
    used = hass.states.get("sensor.spark_1_gpu_memory_used")
    usage = hass.states.get("sensor.spark_1_gpu_memory_usage")
    assert used is not None
    assert usage is not None
    assert used.attributes["unit_of_measurement"] == "GiB"
    total_gib = MEM_TOTAL_KB / 1024 / 1024
    assert 0 < float(used.state) < total_gib
    assert float(usage.state) == round(100 * float(used.state) / total_gib, 1)
    # The head runs vLLM (its weights fill most of the memory); spark-2 only the speech.
    assert float(usage.state) > 70
    idle = hass.states.get("sensor.spark_2_gpu_memory_usage")
    assert idle is not None
    assert 0 < float(idle.state) < 20


async def test_vllm_metrics_unavailable_once_vllm_stops(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """Stopping vLLM takes its tokens/s and KV cache away at once (the fast poll), not at
    the next slow poll; they do not read 0."""
    speed = "sensor.lab_vllm_generation_speed"
    kv_cache = "sensor.lab_vllm_kv_cache_usage"
    assert hass.states.get(speed).state != "unavailable"  # type: ignore[union-attr]
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.lab_vllm_running"}, blocking=True
    )
    await hass.async_block_till_done()
    assert hass.states.get(speed).state == "unavailable"  # type: ignore[union-attr]
    assert hass.states.get(kv_cache).state == "unavailable"  # type: ignore[union-attr]
