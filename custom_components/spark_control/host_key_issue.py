"""The repair issue raised when a node presents a host key other than the pinned one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .sparklib.errors import HostKeyChanged

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry


def host_key_issue_id(entry_id: str, node: str) -> str:
    """One issue per entry and node, so fixing one node leaves the others listed."""
    return f"host_key_changed_{entry_id}_{node}"


@callback
def async_create_host_key_issue(
    hass: HomeAssistant, entry: ConfigEntry, error: HostKeyChanged
) -> None:
    """Tell the user which node changed its key; the fix flow pins the new one."""
    node = error.host  # sparklib names nodes by the node strings we gave it
    ir.async_create_issue(
        hass,
        DOMAIN,
        host_key_issue_id(entry.entry_id, node),
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="host_key_changed",
        translation_placeholders={
            "cluster": entry.title,
            "node": node,
            "expected": error.expected_fingerprint,
            "actual": error.actual_fingerprint,
        },
        data={"entry_id": entry.entry_id, "node": node},
    )
