"""Config, reauth, reconfigure and options flows of Spark Control."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import AbortFlow
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from yarl import URL

from .catalog_subentry import SUBENTRY_FLOWS
from .cluster_check import async_check_ssh, async_unreachable_services
from .cluster_config import Address, default_endpoints, parse_address
from .const import (
    CONF_CLUSTER_NAME,
    CONF_DEEP_CHECK_INTERVAL,
    CONF_ENDPOINTS,
    CONF_GATEWAY_API_KEY,
    CONF_GATEWAY_URL,
    CONF_HOST_KEYS,
    CONF_METRICS_INTERVAL,
    CONF_NODES,
    CONF_POLL_INTERVAL,
    CONF_PRIVATE_KEY,
    CONF_PROBE_TIMEOUT,
    CONF_PUBLIC_KEY,
    CONF_REPO_PATH,
    CONF_RESTART_LIMIT,
    CONF_RESTART_WINDOW,
    CONF_SSH_PORT,
    CONF_SSH_USER,
    CONF_STT_PORT,
    CONF_SWAP_FALLBACK,
    CONF_SWAP_TIMEOUT,
    CONF_TTS_PORT,
    CONF_VLLM_FREEZE_WINDOW,
    CONF_VLLM_LOG_WATCH,
    CONF_VLLM_PROBE_INTERVAL,
    CONF_VLLM_PROBE_TIMEOUT,
    CONF_VLLM_RELAUNCH_ON_EXIT,
    CONF_VLLM_RESTART_LIMIT,
    CONF_VLLM_RESTART_WINDOW,
    CONF_VOICE_BRIDGES,
    DEFAULT_DEEP_CHECK_INTERVAL,
    DEFAULT_METRICS_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_PROBE_TIMEOUT,
    DEFAULT_REPO_PATH,
    DEFAULT_RESTART_LIMIT,
    DEFAULT_RESTART_WINDOW,
    DEFAULT_SSH_PORT,
    DEFAULT_STT_PORT,
    DEFAULT_SWAP_FALLBACK,
    DEFAULT_SWAP_TIMEOUT,
    DEFAULT_TTS_PORT,
    DEFAULT_VLLM_FREEZE_WINDOW,
    DEFAULT_VLLM_LOG_WATCH,
    DEFAULT_VLLM_PROBE_INTERVAL,
    DEFAULT_VLLM_PROBE_TIMEOUT,
    DEFAULT_VLLM_RELAUNCH_ON_EXIT,
    DEFAULT_VLLM_RESTART_LIMIT,
    DEFAULT_VLLM_RESTART_WINDOW,
    DEFAULT_VOICE_BRIDGES,
    DOMAIN,
    LOGGER,
    SERVICES,
)
from .coordinator import SparkControlConfigEntry
from .identity import ENTRY_MINOR_VERSION, ENTRY_VERSION, cluster_unique_id, head_address
from .sparklib.errors import (
    AuthRejected,
    CannotConnect,
    HostKeyChanged,
    InvalidInput,
    SparkError,
)
from .sparklib.keys import KeyPair, fingerprint, generate_keypair, parse_private_key
from .sparklib.validation import validate_path, validate_port, validate_username
from .voice_ports import async_suggest_voice_ports, port_conflicts, port_is_free, voice_ports

CONF_KEY_SOURCE = "key_source"
CONF_CHANGE_NODES = "change_nodes"  # on the key steps: back to the nodes form
KEY_SOURCE_GENERATE = "generate"
KEY_SOURCE_PASTE = "paste"
DEFAULT_SSH_USER = "spark"

_TEXT = TextSelector()
_MULTILINE = TextSelector(TextSelectorConfig(multiline=True))
_SWITCH = BooleanSelector()


def _number(minimum: int, maximum: int, unit: str) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=minimum, max=maximum, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement=unit
        )
    )


def _ssh_port(value: Any) -> int:
    """The SSH port from a number field (which sends floats); InvalidInput if not a port."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(CONF_SSH_PORT, "not a number") from None
    if not number.is_integer():
        raise InvalidInput(CONF_SSH_PORT, "not a whole number")
    return validate_port(int(number), CONF_SSH_PORT)


def _parse_nodes(text: str, ssh_port: int) -> list[str]:
    """Split the node list and normalise each entry; InvalidInput on any bad one, its
    message the node as typed (the form names it), or "" when no node is listed."""
    nodes: list[str] = []
    for raw in text.replace("\n", ",").split(","):
        if not raw.strip():
            continue
        try:
            address = parse_address(raw, ssh_port, field=CONF_NODES)
        except InvalidInput:
            raise InvalidInput(CONF_NODES, raw.strip()) from None
        node = address.host if address.port == ssh_port else f"{address.url_host}:{address.port}"
        if node not in nodes:
            nodes.append(node)
    if not nodes:
        raise InvalidInput(CONF_NODES, "")
    return nodes


def _checked[T](errors: dict[str, str], field: str, check: Callable[[], T]) -> T:
    """`check()`'s value; on InvalidInput the field's error is set (and a stand-in returned,
    which is never used because the form is shown again), so every bad field is reported."""
    try:
        return check()
    except InvalidInput:
        errors[field] = f"invalid_{field}"
        return cast("T", None)


def _check_hosts(
    user_input: Mapping[str, Any], errors: dict[str, str], placeholders: dict[str, str]
) -> tuple[int, list[str], str]:
    """SSH port, nodes and repo path of a form, each bad one noted in `errors` (a bad
    node by name in `placeholders`)."""
    ssh_port = _checked(errors, CONF_SSH_PORT, lambda: _ssh_port(user_input[CONF_SSH_PORT]))
    # Nodes are checked even when the port is bad, against the default port.
    nodes: list[str] = []
    try:
        nodes = _parse_nodes(user_input[CONF_NODES], ssh_port or DEFAULT_SSH_PORT)
    except InvalidInput as err:
        errors[CONF_NODES] = f"invalid_{CONF_NODES}" if err.message else "no_nodes"
        placeholders["node"] = err.message
    repo_path = _checked(
        errors, CONF_REPO_PATH, lambda: validate_path(user_input[CONF_REPO_PATH], CONF_REPO_PATH)
    )
    return ssh_port, nodes, repo_path


def _address_text(address: Mapping[str, Any]) -> str:
    host = str(address["host"])
    return f"[{host}]:{address['port']}" if ":" in host else f"{host}:{address['port']}"


def _fingerprint_lines(host_keys: Mapping[str, str]) -> str:
    return "\n".join(f"- {node}: {fingerprint(line)}" for node, line in host_keys.items())


def _ssh_error(error: SparkError, errors: dict[str, str], placeholders: dict[str, str]) -> None:
    """Fill the form's error for an SSH failure, naming the node."""
    if isinstance(error, AuthRejected):
        errors["base"] = "auth_rejected"
        placeholders["host"] = error.host
    elif isinstance(error, HostKeyChanged):
        errors["base"] = "host_key_changed"
        placeholders["host"] = error.host
    elif isinstance(error, CannotConnect):
        errors["base"] = "cannot_connect"
        placeholders["host"] = error.host
    else:
        errors["base"] = "ssh_failed"
        placeholders["host"] = str(error)


class SparkControlConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a cluster: nodes and SSH, the client key, then where each service lives."""

    VERSION = ENTRY_VERSION
    MINOR_VERSION = ENTRY_MINOR_VERSION

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._keypair: KeyPair | None = None
        self._user_input: dict[str, Any] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: SparkControlConfigEntry) -> OptionsFlow:
        """Options live in their own flow."""
        return SparkControlOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: SparkControlConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """The model catalog: one subentry per model (catalog_subentry.py)."""
        return SUBENTRY_FLOWS

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Cluster name, nodes, SSH login and how to get a key."""
        errors: dict[str, str] = {}
        placeholders = {"node": ""}
        if user_input is not None:
            self._user_input = form = user_input
            ssh_port, nodes, repo_path = _check_hosts(form, errors, placeholders)
            username = _checked(
                errors, CONF_SSH_USER, lambda: validate_username(form[CONF_SSH_USER], CONF_SSH_USER)
            )
            if not errors:
                self._data = {
                    CONF_CLUSTER_NAME: user_input[CONF_CLUSTER_NAME].strip() or nodes[0],
                    CONF_NODES: nodes,
                    CONF_SSH_USER: username,
                    CONF_SSH_PORT: ssh_port,
                    CONF_REPO_PATH: repo_path,
                }
                # The same head node written another way is caught before any key is made;
                # the host key (the unique id) catches a new address of a known cluster.
                self._abort_if_head_configured()
                if user_input[CONF_KEY_SOURCE] == KEY_SOURCE_PASTE:
                    return await self.async_step_paste_key()
                self._keypair = self._keypair or generate_keypair()
                return await self.async_step_authorize_key()
        else:
            # Back from a key step: the form shows what was entered before.
            user_input = self._user_input
        schema = vol.Schema(
            {
                vol.Required(CONF_CLUSTER_NAME): _TEXT,
                vol.Required(CONF_NODES): _TEXT,
                vol.Required(CONF_SSH_USER, default=DEFAULT_SSH_USER): _TEXT,
                vol.Required(CONF_SSH_PORT, default=DEFAULT_SSH_PORT): _number(1, 65535, ""),
                vol.Required(CONF_REPO_PATH, default=DEFAULT_REPO_PATH): _TEXT,
                vol.Required(CONF_KEY_SOURCE, default=KEY_SOURCE_GENERATE): SelectSelector(
                    SelectSelectorConfig(
                        options=[KEY_SOURCE_GENERATE, KEY_SOURCE_PASTE],
                        translation_key=CONF_KEY_SOURCE,
                    )
                ),
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _abort_if_head_configured(self) -> None:
        """Abort when an entry already has this head node (same host and SSH port)."""
        head = head_address(self._data)
        for entry in self._async_current_entries(include_ignore=False):
            if head_address(entry.data) == head:
                raise AbortFlow("already_configured")

    async def async_step_authorize_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the generated public key; connect once the user has installed it."""
        assert self._keypair is not None
        errors: dict[str, str] = {}
        placeholders = {"public_key": self._keypair.public_key, "host": ""}
        if user_input is not None and user_input.get(CONF_CHANGE_NODES):
            return await self.async_step_user()
        if user_input is not None and await self._async_connect(
            self._keypair, errors, placeholders
        ):
            return await self.async_step_services()
        return self.async_show_form(
            step_id="authorize_key",
            data_schema=vol.Schema({vol.Optional(CONF_CHANGE_NODES, default=False): _SWITCH}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_paste_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Use an existing private key instead of a generated one."""
        errors: dict[str, str] = {}
        placeholders = {"host": ""}
        if user_input is not None and user_input.get(CONF_CHANGE_NODES):
            return await self.async_step_user()
        if user_input is not None:
            try:
                keypair = parse_private_key(user_input.get(CONF_PRIVATE_KEY) or "")
            except InvalidInput:
                errors[CONF_PRIVATE_KEY] = "invalid_private_key"
            else:
                if await self._async_connect(keypair, errors, placeholders):
                    return await self.async_step_services()
        return self.async_show_form(
            step_id="paste_key",
            data_schema=vol.Schema(
                {
                    # Optional so that "change the nodes" can be sent without a key.
                    vol.Optional(CONF_PRIVATE_KEY): _MULTILINE,
                    vol.Optional(CONF_CHANGE_NODES, default=False): _SWITCH,
                }
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_connect(
        self, keypair: KeyPair, errors: dict[str, str], placeholders: dict[str, str]
    ) -> bool:
        """Connect to every node, run the probe command and pin the host keys."""
        data = {
            **self._data,
            CONF_PRIVATE_KEY: keypair.private_key,
            CONF_PUBLIC_KEY: keypair.public_key,
            CONF_HOST_KEYS: {},
        }
        try:
            host_keys = await async_check_ssh(self.hass, data)
        except SparkError as error:
            _ssh_error(error, errors, placeholders)
            return False
        self._data = {**data, CONF_HOST_KEYS: host_keys}
        return True

    async def async_step_services(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Where vLLM, Parakeet and Magpie listen; each endpoint is probed."""
        errors: dict[str, str] = {}
        # Another flow at this step for the same cluster is one the user left (a closed tab):
        # nothing lists it, so refusing this one would block the cluster until HA restarts.
        await self.async_set_unique_id(cluster_unique_id(self._data), raise_on_progress=False)
        self._abort_if_unique_id_configured()
        if user_input is not None:
            endpoints = _parse_endpoints(user_input, errors)
            gateway = _parse_gateway(user_input, errors)
            if not errors:
                data = {**self._data, CONF_ENDPOINTS: endpoints, **gateway}
                for service in await async_unreachable_services(self.hass, data):
                    errors[service] = "endpoint_unreachable"
                if not errors:
                    stt_port, tts_port = await async_suggest_voice_ports(self.hass)
                    return self.async_create_entry(
                        title=data[CONF_CLUSTER_NAME],
                        data=data,
                        options={CONF_STT_PORT: stt_port, CONF_TTS_PORT: tts_port},
                    )
        else:
            nodes = [
                parse_address(node, self._data[CONF_SSH_PORT]) for node in self._data[CONF_NODES]
            ]
            user_input = {
                service: _address_text(address)
                for service, address in default_endpoints(nodes).items()
            }
        return self.async_show_form(
            step_id="services",
            data_schema=self.add_suggested_values_to_schema(
                _ENDPOINTS_SCHEMA.extend(_GATEWAY_FIELDS), user_input
            ),
            errors=errors,
            description_placeholders={
                "fingerprints": _fingerprint_lines(self._data[CONF_HOST_KEYS])
            },
        )

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The add-on announced its gateway: link it to every configured cluster."""
        url = _gateway_url(discovery_info.config.get("url"))
        if url is None:
            return self.async_abort(reason="invalid_discovery_info")
        entries = self._async_current_entries(include_ignore=False)
        if not entries:
            return self.async_abort(reason="no_cluster")
        api_key = discovery_info.config.get("api_key") or None
        for entry in entries:
            if (entry.data.get(CONF_GATEWAY_URL), entry.data.get(CONF_GATEWAY_API_KEY)) != (
                url,
                api_key,
            ):
                self.hass.config_entries.async_update_entry(
                    entry,
                    data={**entry.data, CONF_GATEWAY_URL: url, CONF_GATEWAY_API_KEY: api_key},
                )
                # Reload so the running entry uses the gateway link.
                if entry.state is ConfigEntryState.LOADED:
                    self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_abort(reason="gateway_linked")

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """A node rejected the key."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the public key again, or take a pasted private key, then reconnect."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        placeholders = {"public_key": entry.data[CONF_PUBLIC_KEY], "host": ""}
        if user_input is not None:
            pasted = (user_input.get(CONF_PRIVATE_KEY) or "").strip()
            try:
                keypair = (
                    parse_private_key(pasted)
                    if pasted
                    else KeyPair(entry.data[CONF_PRIVATE_KEY], entry.data[CONF_PUBLIC_KEY])
                )
            except InvalidInput:
                errors[CONF_PRIVATE_KEY] = "invalid_private_key"
            else:
                data = {
                    **entry.data,
                    CONF_PRIVATE_KEY: keypair.private_key,
                    CONF_PUBLIC_KEY: keypair.public_key,
                }
                try:
                    await async_check_ssh(self.hass, data)
                except SparkError as error:
                    _ssh_error(error, errors, placeholders)
                else:
                    return self.async_update_reload_and_abort(
                        entry,
                        data_updates={
                            CONF_PRIVATE_KEY: keypair.private_key,
                            CONF_PUBLIC_KEY: keypair.public_key,
                        },
                    )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Optional(CONF_PRIVATE_KEY): _MULTILINE}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change hosts and ports; new nodes get their host keys pinned."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders = {"host": "", "node": ""}
        if user_input is not None:
            ssh_port, nodes, repo_path = _check_hosts(user_input, errors, placeholders)
            endpoints = _parse_endpoints(user_input, errors)
            if not errors:
                data = {
                    **entry.data,
                    CONF_NODES: nodes,
                    CONF_SSH_PORT: ssh_port,
                    CONF_REPO_PATH: repo_path,
                    CONF_ENDPOINTS: endpoints,
                    # Keep the keys of nodes that stay; new nodes are pinned on first use.
                    CONF_HOST_KEYS: {
                        node: line
                        for node, line in entry.data[CONF_HOST_KEYS].items()
                        if node in nodes
                    },
                }
                try:
                    data[CONF_HOST_KEYS] = await async_check_ssh(self.hass, data)
                except SparkError as error:
                    _ssh_error(error, errors, placeholders)
                else:
                    for service in await async_unreachable_services(self.hass, data):
                        errors[service] = "endpoint_unreachable"
                if not errors:
                    # Another head node (another host key) is another cluster: add it instead.
                    if (unique_id := cluster_unique_id(data)) != entry.unique_id:
                        await self.async_set_unique_id(unique_id)
                        self._abort_if_unique_id_configured()
                        self._abort_if_unique_id_mismatch(reason="different_cluster")
                    return self.async_update_reload_and_abort(entry, data=data)
        else:
            user_input = {
                CONF_NODES: ", ".join(entry.data[CONF_NODES]),
                CONF_SSH_PORT: entry.data[CONF_SSH_PORT],
                CONF_REPO_PATH: entry.data[CONF_REPO_PATH],
                **{
                    service: _address_text(entry.data[CONF_ENDPOINTS][service])
                    for service in SERVICES
                },
            }
        schema = vol.Schema(
            {
                vol.Required(CONF_NODES): _TEXT,
                vol.Required(CONF_SSH_PORT): _number(1, 65535, ""),
                vol.Required(CONF_REPO_PATH): _TEXT,
            }
        ).extend(_ENDPOINTS_SCHEMA.schema)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )


_ENDPOINTS_SCHEMA = vol.Schema({vol.Required(service): _TEXT for service in SERVICES})
_GATEWAY_FIELDS = {
    vol.Optional(CONF_GATEWAY_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
    vol.Optional(CONF_GATEWAY_API_KEY): TextSelector(
        TextSelectorConfig(type=TextSelectorType.PASSWORD)
    ),
}


def _gateway_url(value: object) -> str | None:
    """An http(s) URL with a host, without credentials; None if it is not one."""
    try:
        url = URL(str(value).strip())
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host or url.user or url.password:
        return None
    return str(url).rstrip("/")


def _parse_gateway(user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The optional add-on gateway link (URL and API key) from a form."""
    raw = (user_input.get(CONF_GATEWAY_URL) or "").strip()
    if not raw:
        return {}
    url = _gateway_url(raw)
    if url is None:
        errors[CONF_GATEWAY_URL] = "invalid_gateway_url"
        return {}
    return {
        CONF_GATEWAY_URL: url,
        CONF_GATEWAY_API_KEY: user_input.get(CONF_GATEWAY_API_KEY) or None,
    }


def _parse_endpoints(
    user_input: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """`host:port` per service; an entry in `errors` for each bad one."""
    endpoints: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        try:
            address: Address = parse_address(str(user_input[service]), -1, field=service)
        except InvalidInput:
            errors[service] = "invalid_endpoint"
        else:
            endpoints[service] = {"host": address.host, "port": address.port}
    return endpoints


class SparkControlOptionsFlow(OptionsFlowWithReload):
    """Polling, swap and recovery settings, and the voice bridges."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option; the entry reloads to apply it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = {k: _whole(v) for k, v in user_input.items()}
            # Ports another cluster's bridges claim, or another program listens on, would only
            # fail at the reload (a repair issue); the entry's own bridges hold its current ports.
            errors = port_conflicts(
                self.hass, self.config_entry.entry_id, chosen[CONF_STT_PORT], chosen[CONF_TTS_PORT]
            )
            if chosen.get(CONF_VOICE_BRIDGES, True):
                own = voice_ports(self.config_entry)
                for key in (CONF_STT_PORT, CONF_TTS_PORT):
                    port = chosen[key]
                    if key in errors or port in own:
                        continue
                    if not await self.hass.async_add_executor_job(port_is_free, port):
                        errors[key] = "port_in_use"
            if not errors:
                LOGGER.debug("Options of %s changed", self.config_entry.title)
                return self.async_create_entry(data=chosen)
        options = {**self.config_entry.options, **(user_input or {})}
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_POLL_INTERVAL,
                    default=options.get(CONF_POLL_INTERVAL, DEFAULT_POLL_INTERVAL),
                ): _number(1, 300, "s"),
                vol.Required(
                    CONF_METRICS_INTERVAL,
                    default=options.get(CONF_METRICS_INTERVAL, DEFAULT_METRICS_INTERVAL),
                ): _number(5, 3600, "s"),
                vol.Required(
                    CONF_SWAP_TIMEOUT,
                    default=options.get(CONF_SWAP_TIMEOUT, DEFAULT_SWAP_TIMEOUT),
                ): _number(1, 180, "min"),
                vol.Required(
                    CONF_SWAP_FALLBACK,
                    default=options.get(CONF_SWAP_FALLBACK, DEFAULT_SWAP_FALLBACK),
                ): BooleanSelector(),
                vol.Required(
                    CONF_DEEP_CHECK_INTERVAL,
                    default=options.get(CONF_DEEP_CHECK_INTERVAL, DEFAULT_DEEP_CHECK_INTERVAL),
                ): _number(0, 1440, "min"),
                vol.Required(
                    CONF_RESTART_LIMIT,
                    default=options.get(CONF_RESTART_LIMIT, DEFAULT_RESTART_LIMIT),
                ): _number(0, 100, ""),
                vol.Required(
                    CONF_RESTART_WINDOW,
                    default=options.get(CONF_RESTART_WINDOW, DEFAULT_RESTART_WINDOW),
                ): _number(1, 1440, "min"),
                vol.Required(
                    CONF_VLLM_RESTART_LIMIT,
                    default=options.get(CONF_VLLM_RESTART_LIMIT, DEFAULT_VLLM_RESTART_LIMIT),
                ): _number(0, 100, ""),
                vol.Required(
                    CONF_VLLM_RESTART_WINDOW,
                    default=options.get(CONF_VLLM_RESTART_WINDOW, DEFAULT_VLLM_RESTART_WINDOW),
                ): _number(1, 1440, "min"),
                vol.Required(
                    CONF_PROBE_TIMEOUT,
                    default=options.get(CONF_PROBE_TIMEOUT, DEFAULT_PROBE_TIMEOUT),
                ): _number(1, 600, "s"),
                vol.Required(
                    CONF_VLLM_PROBE_INTERVAL,
                    default=options.get(CONF_VLLM_PROBE_INTERVAL, DEFAULT_VLLM_PROBE_INTERVAL),
                ): _number(0, 3600, "s"),
                vol.Required(
                    CONF_VLLM_PROBE_TIMEOUT,
                    default=options.get(CONF_VLLM_PROBE_TIMEOUT, DEFAULT_VLLM_PROBE_TIMEOUT),
                ): _number(1, 600, "s"),
                vol.Required(
                    CONF_VLLM_FREEZE_WINDOW,
                    default=options.get(CONF_VLLM_FREEZE_WINDOW, DEFAULT_VLLM_FREEZE_WINDOW),
                ): _number(0, 3600, "s"),
                vol.Required(
                    CONF_VLLM_LOG_WATCH,
                    default=options.get(CONF_VLLM_LOG_WATCH, DEFAULT_VLLM_LOG_WATCH),
                ): BooleanSelector(),
                vol.Required(
                    CONF_VLLM_RELAUNCH_ON_EXIT,
                    default=options.get(CONF_VLLM_RELAUNCH_ON_EXIT, DEFAULT_VLLM_RELAUNCH_ON_EXIT),
                ): BooleanSelector(),
                vol.Required(
                    CONF_VOICE_BRIDGES,
                    default=options.get(CONF_VOICE_BRIDGES, DEFAULT_VOICE_BRIDGES),
                ): BooleanSelector(),
                vol.Required(
                    CONF_STT_PORT, default=options.get(CONF_STT_PORT, DEFAULT_STT_PORT)
                ): _number(1, 65535, ""),
                vol.Required(
                    CONF_TTS_PORT, default=options.get(CONF_TTS_PORT, DEFAULT_TTS_PORT)
                ): _number(1, 65535, ""),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)


def _whole(value: Any) -> Any:
    """Number selectors hand back floats; the options are whole numbers."""
    return int(value) if isinstance(value, float) else value
