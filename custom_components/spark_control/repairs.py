"""Fix flows for Spark Control's repair issues."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant import data_entry_flow
from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)

from .cluster_config import node_address, private_key_of, ssh_user_of
from .const import CONF_HOST_KEYS, CONF_STT_PORT, CONF_TTS_PORT, DOMAIN
from .download_repairs import download_fix_flow
from .sparklib.errors import SparkError
from .sparklib.keys import fingerprint
from .sparklib.ssh import SshNode
from .voice import VOICE_PORT_ISSUE
from .voice_ports import (
    async_suggest_voice_ports,
    port_conflicts,
    port_is_free,
    voice_ports,
)


class HostKeyChangedRepairFlow(RepairsFlow):
    """Show the node's new host key fingerprint and pin it once the user confirms."""

    def __init__(self, entry_id: str, node: str) -> None:
        self._entry_id = entry_id
        self._node = node
        self._offered: str | None = None

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """Start with the confirmation step."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Fetch the key the node offers now; pin exactly that key on confirmation."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        errors: dict[str, str] = {}
        try:
            current = await self._fetch_key(entry.data)
        except SparkError:
            return self.async_abort(reason="cannot_connect")
        if user_input is not None:
            if current != self._offered:
                # The key changed again between showing and confirming: show the new one.
                errors["base"] = "key_changed_again"
            else:
                host_keys = {**entry.data[CONF_HOST_KEYS], self._node: current}
                self.hass.config_entries.async_update_entry(
                    entry, data={**entry.data, CONF_HOST_KEYS: host_keys}
                )
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_create_entry(data={})
        self._offered = current
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        placeholders = dict(issue.translation_placeholders or {}) if issue else {}
        placeholders.update(node=self._node, actual=fingerprint(current))
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _fetch_key(self, data: Any) -> str:
        address = node_address(data, self._node)
        node = SshNode(address.host, address.port, ssh_user_of(data), private_key_of(data), None)
        try:
            return await node.fetch_host_key()
        finally:
            await node.close()


class VoicePortsRepairFlow(RepairsFlow):
    """Choose other ports for a cluster's voice bridges; the entry reloads with them."""

    def __init__(self, entry_id: str) -> None:
        self._entry_id = entry_id

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """The repairs manager passes the issue here: show the port form."""
        return await self.async_step_ports()

    async def async_step_ports(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Two ports, suggested from the first free pair; each checked before saving."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        errors: dict[str, str] = {}
        if user_input is not None:
            ports = {key: int(user_input[key]) for key in (CONF_STT_PORT, CONF_TTS_PORT)}
            conflicts = port_conflicts(
                self.hass, entry.entry_id, ports[CONF_STT_PORT], ports[CONF_TTS_PORT]
            )
            for key, port in ports.items():
                if conflicts.get(key) == "port_of_other_cluster":
                    errors[key] = "port_of_other_cluster"
                elif not await self.hass.async_add_executor_job(port_is_free, port):
                    errors[key] = "port_in_use"
            if "same_port" in conflicts.values():
                errors.setdefault(CONF_TTS_PORT, "same_port")
            if not errors:
                self.hass.config_entries.async_update_entry(
                    entry, options={**entry.options, **ports}
                )
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_create_entry(data={})
            suggested: dict[str, Any] = user_input
        else:
            stt, tts = await async_suggest_voice_ports(self.hass, entry.entry_id)
            suggested = {CONF_STT_PORT: stt, CONF_TTS_PORT: tts}
        port_field = NumberSelector(
            NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX)
        )
        schema = vol.Schema(
            {vol.Required(CONF_STT_PORT): port_field, vol.Required(CONF_TTS_PORT): port_field}
        )
        stt_now, tts_now = voice_ports(entry)
        return self.async_show_form(
            step_id="ports",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={
                "cluster": entry.title,
                "stt_port": str(stt_now),
                "tts_port": str(tts_now),
            },
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow for an issue raised by this integration."""
    if issue_id.startswith("host_key_changed_") and data is not None:
        return HostKeyChangedRepairFlow(str(data["entry_id"]), str(data["node"]))
    if (flow := download_fix_flow(issue_id, data)) is not None:
        return flow
    if issue_id.startswith(f"{VOICE_PORT_ISSUE}_") and data is not None:
        return VoicePortsRepairFlow(str(data["entry_id"]))
    return ConfirmRepairFlow()
