"""Library errors become translated HA errors whose text exists in translations/en.json."""

from __future__ import annotations

import json

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.spark_control.const import DOMAIN
from custom_components.spark_control.errors import translate_error
from custom_components.spark_control.sparklib.errors import (
    AuthRejected,
    CannotConnect,
    CommandFailed,
    CommandTimeout,
    HostKeyChanged,
    InvalidInput,
    NotHealthyInTime,
    ServiceUnreachable,
    SparkError,
    SwapFailed,
    SwapInProgress,
)
from tests.ha_entry import async_node_hangs_up
from tests.paths import REPO
from tests.sim import SimCluster

EN = json.loads((REPO / "custom_components/spark_control/translations/en.json").read_text())


@pytest.mark.parametrize(
    ("error", "key", "validation"),
    [
        (InvalidInput("repo_id", "bad"), "invalid_input", True),
        (SwapInProgress("gemma4"), "swap_in_progress", False),
        (SwapFailed("gemma4", "timeout", ["x"]), "swap_failed", False),
        (HostKeyChanged("n1", "SHA256:a", "SHA256:b"), "host_key_changed", False),
        (AuthRejected("n1"), "auth_rejected", False),
        (CannotConnect("n1", "refused"), "cannot_connect", False),
        (ServiceUnreachable("parakeet", "http://x"), "service_unreachable", False),
        (CommandTimeout("docker ps", 30), "command_timeout", False),
        (CommandFailed("docker ps", 1, "boom"), "command_failed", False),
        (NotHealthyInTime("Parakeet", 1200), "not_healthy_in_time", False),
        (SparkError("odd"), "unknown_error", False),
    ],
)
def test_every_error_has_text(error: SparkError, key: str, validation: bool) -> None:
    """Each mapping names a message that exists and whose placeholders are all filled."""
    translated = translate_error(error)
    assert translated.translation_domain == DOMAIN
    assert translated.translation_key == key
    assert isinstance(translated, ServiceValidationError) is validation
    message = EN["exceptions"][key]["message"]
    assert message.format(**(translated.translation_placeholders or {}))


async def test_rejected_key_on_an_action_leads_to_reauth(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    """A key rejected when a button reconnects: translated error, then the reauth flow."""
    sim.faults.reject_key(1)
    # The node dropped our kept connection; the next command reconnects.
    await async_node_hangs_up(loaded_entry, sim, 1)
    with pytest.raises(HomeAssistantError) as error:
        await hass.services.async_call(
            "button",
            "press",
            {"entity_id": "button.lab_parakeet_asr_restart"},
            blocking=True,
        )
    assert error.value.translation_key == "auth_rejected"
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
