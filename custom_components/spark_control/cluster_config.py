"""Read the config entry's data: node addresses, service endpoints and the sparklib config.

Nodes are stored as strings: `host` (SSH on the entry's port) or `host:port` / `[v6]:port` when
one node listens elsewhere. The node string is also the key of its pinned host key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .const import (
    CONF_CLUSTER_NAME,
    CONF_CONTAINERS,
    CONF_ENDPOINTS,
    CONF_HOST_KEYS,
    CONF_NODES,
    CONF_PRIVATE_KEY,
    CONF_REPO_PATH,
    CONF_SSH_PORT,
    CONF_SSH_USER,
    DEFAULT_CONTAINERS,
    DEFAULT_PORTS,
    DEFAULT_REPO_PATH,
    DEFAULT_SSH_PORT,
    SERVICE_VLLM,
    SERVICES,
)
from .sparklib.cluster import ClusterConfig, NodeConfig
from .sparklib.hosts import same_host
from .sparklib.http_api import Endpoint
from .sparklib.validation import validate_host, validate_port


@dataclass(frozen=True)
class Address:
    """A host and a TCP port."""

    host: str
    port: int

    @property
    def url_host(self) -> str:
        """The host as it appears in a URL (IPv6 literals in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_address(text: str, default_port: int, field: str = "host") -> Address:
    """Parse `host`, `host:port`, `v6` or `[v6]:port`; raise sparklib's InvalidInput if bad."""
    text = text.strip()
    if text.startswith("[") and "]:" in text:
        host_text, _, port_text = text[1:].partition("]:")
    elif text.count(":") == 1:
        host_text, _, port_text = text.partition(":")
    else:
        return Address(validate_host(text, field), validate_port(default_port, field))
    return Address(validate_host(host_text, field), validate_port(_port(port_text), field))


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1  # validate_port rejects it with the right message


def nodes_of(data: Mapping[str, Any]) -> list[str]:
    """The node strings, head node first."""
    return list(data[CONF_NODES])


def node_address(data: Mapping[str, Any], node: str) -> Address:
    """The SSH address of one node."""
    return parse_address(node, data.get(CONF_SSH_PORT, DEFAULT_SSH_PORT))


def endpoint_of(data: Mapping[str, Any], service: str) -> Address:
    """The HTTP address of one service."""
    raw = data.get(CONF_ENDPOINTS, {}).get(service)
    if raw is None:
        head = node_address(data, nodes_of(data)[0])
        return Address(head.host, DEFAULT_PORTS[service])
    return Address(str(raw["host"]), int(raw["port"]))


def node_hosting(data: Mapping[str, Any], service: str) -> str | None:
    """The node that runs a service: the one whose host serves the endpoint, spelled either
    way (case, trailing dot, IPv6 forms); None when the endpoint's host is none of the nodes
    as written (a host name for a node given by IP is matched by address at setup, see
    `ClusterClient.locate_services`).

    When several nodes share that host (different SSH ports), the default placement breaks
    the tie: vLLM on the head node, speech on the second node.
    """
    host = endpoint_of(data, service).host
    nodes = nodes_of(data)
    matches = [node for node in nodes if same_host(node_address(data, node).host, host)]
    if not matches:
        return None
    preferred = nodes[0] if service == SERVICE_VLLM or len(nodes) == 1 else nodes[1]
    return preferred if preferred in matches else matches[0]


def default_endpoints(nodes: list[Address]) -> dict[str, dict[str, Any]]:
    """vLLM on the head node; speech on the second node, or the head when there is one."""
    speech = nodes[1] if len(nodes) > 1 else nodes[0]
    return {
        service: {
            "host": (nodes[0] if service == SERVICE_VLLM else speech).host,
            "port": DEFAULT_PORTS[service],
        }
        for service in SERVICES
    }


def containers_of(data: Mapping[str, Any]) -> dict[str, str]:
    """Container name per service."""
    return {**DEFAULT_CONTAINERS, **data.get(CONF_CONTAINERS, {})}


def repo_path_of(data: Mapping[str, Any]) -> str:
    """The spark-vllm-docker checkout on the head node."""
    return str(data.get(CONF_REPO_PATH, DEFAULT_REPO_PATH))


def ssh_user_of(data: Mapping[str, Any]) -> str:
    """The SSH login."""
    return str(data[CONF_SSH_USER])


def private_key_of(data: Mapping[str, Any]) -> str:
    """The client's private key (OpenSSH PEM)."""
    return str(data[CONF_PRIVATE_KEY])


def host_keys_of(data: Mapping[str, Any]) -> dict[str, str]:
    """Pinned host keys per node string."""
    return dict(data.get(CONF_HOST_KEYS, {}))


def build_cluster_config(data: Mapping[str, Any]) -> ClusterConfig:
    """The sparklib configuration of the cluster described by an entry's data.

    Node strings are the sparklib node keys, so errors and per-node results name them.
    """
    nodes = nodes_of(data)
    pinned = host_keys_of(data)
    return ClusterConfig(
        name=str(data.get(CONF_CLUSTER_NAME, nodes[0])),
        nodes=[
            NodeConfig(
                host=(address := node_address(data, node)).host,
                ssh_port=address.port,
                username=ssh_user_of(data),
                node_id=node,
            )
            for node in nodes
        ],
        private_key=private_key_of(data),
        host_keys={node: line for node, line in pinned.items() if node in nodes},
        repo_path=repo_path_of(data),
        endpoints={
            service: Endpoint(endpoint_of(data, service).host, endpoint_of(data, service).port)
            for service in SERVICES
        },
        containers=containers_of(data),
        service_nodes={
            service: node
            for service in SERVICES
            if (node := node_hosting(data, service)) is not None
        },
    )
