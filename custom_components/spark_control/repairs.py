"""Fix flows for Spark Control's repair issues."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant import data_entry_flow
from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .cluster_config import node_address, private_key_of, ssh_user_of
from .const import CONF_HOST_KEYS, DOMAIN
from .download_repairs import download_fix_flow
from .sparklib.errors import SparkError
from .sparklib.keys import fingerprint
from .sparklib.ssh import SshNode


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


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow for an issue raised by this integration."""
    if issue_id.startswith("host_key_changed_") and data is not None:
        return HostKeyChangedRepairFlow(str(data["entry_id"]), str(data["node"]))
    if (flow := download_fix_flow(issue_id, data)) is not None:
        return flow
    return ConfirmRepairFlow()
