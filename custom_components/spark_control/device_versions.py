"""Software versions on the service devices: vLLM's own version and each container's image.

vLLM says its version on `/version`; the speech containers are known by their image
(`parakeet-asr:latest`). The images come with every slow poll (`docker ps`), so a rebuilt
or retagged container shows up on its device without a reload.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .const import SERVICE_VLLM, SERVICES
from .coordinator import SparkControlConfigEntry
from .entity import entry_devices, service_device
from .sparklib.errors import SparkError


def _image_label(image: str) -> str:
    """`nvcr.io/nim/nvidia/magpie-tts-multilingual:1.3.0` → `magpie-tts-multilingual:1.3.0`."""
    return image.rsplit("/", 1)[-1]


async def async_track_service_versions(hass: HomeAssistant, entry: SparkControlConfigEntry) -> None:
    """Fill the service devices' versions now and after every slow poll."""
    runtime = entry.runtime_data
    try:
        vllm_version = await runtime.client.api.vllm_version()
    except SparkError:
        vllm_version = None  # not loaded right now: the image still tells something
    registry = dr.async_get(hass)

    @callback
    def _update() -> None:
        containers = runtime.metrics.data.containers if runtime.metrics.data else None
        for service in SERVICES:
            info = containers.get(service) if containers else None
            image = _image_label(info.image) if info is not None and info.image else None
            version: str | None
            if service == SERVICE_VLLM and vllm_version:
                version = f"{vllm_version} ({image})" if image else vllm_version
            else:
                version = image
            (_, identifier), *_ = service_device(entry, service)["identifiers"]
            device = entry_devices(hass, entry).get(identifier)
            if device is not None and version and device.sw_version != version:
                registry.async_update_device(device.id, sw_version=version)

    _update()
    entry.async_on_unload(runtime.metrics.async_add_listener(_update))
