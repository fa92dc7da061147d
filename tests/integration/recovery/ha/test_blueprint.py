"""The shipped blueprint imports into Home Assistant and notifies on recovery events."""

from __future__ import annotations

import shutil
from pathlib import Path

from homeassistant.components import persistent_notification
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import models
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import async_capture_events

from tests.paths import REPO

BLUEPRINT = REPO / "blueprints/automation/spark_control/notify_gpu_service_wedged.yaml"
RELATIVE = "spark_control/notify_gpu_service_wedged.yaml"


def test_blueprint_validates() -> None:
    blueprint = models.Blueprint(
        load_yaml_dict(str(BLUEPRINT)),
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    assert blueprint.domain == "automation"
    assert blueprint.name == "Notify when a GPU service wedges or recovery is suppressed"
    assert set(blueprint.inputs) == {
        "cluster",
        "notify_recovered",
        "notify_restarts",
        "notify_actions",
    }


async def _install(hass: HomeAssistant, inputs: dict[str, object]) -> None:
    target = Path(hass.config.path("blueprints/automation", RELATIVE))
    target.parent.mkdir(parents=True, exist_ok=True)
    await hass.async_add_executor_job(shutil.copy, BLUEPRINT, target)
    assert await async_setup_component(
        hass,
        "automation",
        {"automation": {"use_blueprint": {"path": RELATIVE, "input": inputs}}},
    )
    await hass.async_block_till_done()


async def test_notifies_on_wedge_and_suppression_not_on_restart(hass: HomeAssistant) -> None:
    notified = async_capture_events(hass, "test_notified")
    await _install(
        hass,
        {
            "notify_actions": [
                {
                    "event": "test_notified",
                    "event_data": {"title": "{{ title }}", "message": "{{ message }}"},
                }
            ]
        },
    )
    base = {"service": "parakeet", "entry_id": "abc", "cluster": "Lab"}
    hass.bus.async_fire(
        "spark_control_wedge_detected",
        {**base, "error": "transcription answered 500 (CUDA error)", "source": "gateway"},
    )
    hass.bus.async_fire("spark_control_service_restarted", {**base, "attempt": 1, "budget_left": 2})
    hass.bus.async_fire(
        "spark_control_restart_suppressed",
        {**base, "error": "boom", "restarts_in_window": 3, "window_minutes": 30},
    )
    hass.bus.async_fire("spark_control_service_recovered", {**base, "downtime": 4.26})
    await hass.async_block_till_done()

    assert [event.data["title"] for event in notified] == [
        "Parakeet wedged on Lab",
        "Parakeet wedged: automatic restart suppressed",
        "Parakeet recovered on Lab",
    ]
    assert "CUDA error" in notified[0].data["message"]
    assert "3 automatic restarts in 30 minutes" in notified[1].data["message"]
    assert notified[2].data["message"] == "Parakeet works again after 4.3 s of downtime."


async def test_cluster_filter_and_default_persistent_notification(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "persistent_notification", {})
    created: list[dict[str, persistent_notification.Notification]] = []
    persistent_notification.async_register_callback(
        hass, lambda _kind, notifications: created.append(notifications)
    )
    await _install(hass, {"cluster": "wanted-entry", "notify_recovered": False})

    hass.bus.async_fire(
        "spark_control_wedge_detected",
        {"service": "magpie", "entry_id": "other-entry", "error": "x", "cluster": "B"},
    )
    hass.bus.async_fire(
        "spark_control_service_recovered",
        {"service": "magpie", "entry_id": "wanted-entry", "downtime": 1, "cluster": "A"},
    )
    await hass.async_block_till_done()
    assert created == []

    hass.bus.async_fire(
        "spark_control_wedge_detected",
        {"service": "magpie", "entry_id": "wanted-entry", "error": "500", "cluster": "A"},
    )
    await hass.async_block_till_done()
    assert len(created) == 1
    notification = created[0]["spark_control_magpie"]
    assert notification["title"] == "Magpie wedged on A"
    assert notification["message"].startswith("Magpie answers its health check but fails")
