"""`ClusterClient`: the one object the HA glue talks to for a configured cluster."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import aiohttp

from . import speech_container
from .catalog import ModelEntry
from .commands import (
    DockerAction,
    docker_action,
    docker_logs,
    docker_ps,
    docker_top,
    gpu_identity_query,
    hostname_query,
    meminfo_read,
    nvidia_smi_query,
    probe,
    stop_cluster,
    update_apply,
    update_check,
)
from .containers import ContainerInfo, parse_docker_ps, runs_vllm_server
from .downloads import DiskSpace, ModelDownload, read_disk_space
from .errors import InvalidInput, ServiceNotOnNode, SparkError
from .gpu import GpuStats, parse_nvidia_smi
from .hosts import resolve, same_host
from .http_api import Endpoint, ServiceApi
from .node_info import NodeFacts, parse_meminfo, parse_node_facts
from .probes import DeepProber
from .service_keys import DEFAULT_CONTAINERS, DEFAULT_PORTS, PARAKEET, SERVICES, VLLM
from .speech_container import BuildContext
from .ssh import SshNode
from .swap import ProgressCallback, SwapClaim, SwapResult, SwapRunner
from .updates import SoftwareUpdate, parse_update_check
from .validation import validate_container, validate_path

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """How to reach one node over SSH.

    `node_id` is the caller's name for the node (HA uses its node string); it defaults to
    the host. Every per-node dict of ClusterClient is keyed by it, and errors name it in
    their `host` attribute. Set it when two nodes share a host (different SSH ports).
    """

    host: str
    ssh_port: int = 22
    username: str = "root"
    node_id: str | None = None

    @property
    def key(self) -> str:
        """The node's key in every per-node dict."""
        return self.node_id or self.host


@dataclass(slots=True)
class ClusterConfig:
    """Everything needed to talk to a cluster; the first node is the head (vLLM + repo)."""

    name: str
    nodes: list[NodeConfig]
    private_key: str
    host_keys: dict[str, str] = field(default_factory=dict)  # node key -> OpenSSH line
    repo_path: str = "~/spark-vllm-docker"
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CONTAINERS))
    # service -> node key, where the endpoint's host alone is ambiguous (nodes sharing a host).
    service_nodes: dict[str, str] = field(default_factory=dict)


class ClusterClient:
    """Nodes over SSH, services over HTTP, and the swap runner, for one cluster.

    Create it in the event loop with HA's shared session; call `close()` on unload.
    """

    def __init__(
        self, config: ClusterConfig, session: aiohttp.ClientSession, *, http_timeout: float = 5.0
    ) -> None:
        if not config.nodes:
            raise InvalidInput("nodes", "at least one node is needed")
        self.config = config
        validate_path(config.repo_path, "repo_path")
        for container in config.containers.values():
            validate_container(container)
        self.nodes: dict[str, SshNode] = {}
        for node in config.nodes:
            if node.key in self.nodes:
                raise InvalidInput("nodes", f"{node.key} is listed twice")
            self.nodes[node.key] = SshNode(
                node.host,
                node.ssh_port,
                node.username,
                config.private_key,
                config.host_keys.get(node.key),
                name=node.key,
            )
        for service, key in config.service_nodes.items():
            if key not in self.nodes:
                raise InvalidInput("service_nodes", f"{service} placed on unknown node {key}")
        self.head: SshNode = next(iter(self.nodes.values()))
        # Services placed by address (`locate_services`): a host name against a node's IP.
        self._located: dict[str, SshNode] = {}
        self._session = session
        self.api = ServiceApi(session, config.endpoints, timeout=http_timeout)
        self.swapper = SwapRunner(
            self.head,
            self.api,
            config.repo_path,
            self.container(VLLM),
            port=config.endpoints[VLLM].port if VLLM in config.endpoints else DEFAULT_PORTS[VLLM],
        )

    @property
    def hosts(self) -> list[str]:
        """Node hosts, head first (what `launch-cluster.sh -n` gets)."""
        return [node.host for node in self.nodes.values()]

    @property
    def host_keys(self) -> dict[str, str]:
        """Pinned host keys (OpenSSH lines) by node key, to store after `validate()`."""
        return {host: key for host, node in self.nodes.items() if (key := node.pinned_host_key)}

    def container(self, service: str) -> str:
        """The container name of a service."""
        if service not in SERVICES:
            raise InvalidInput("service", f"must be one of {', '.join(SERVICES)}")
        return self.config.containers.get(service, DEFAULT_CONTAINERS[service])

    def node_for(self, service: str) -> SshNode:
        """The node that hosts a service: as placed in `service_nodes`, else the node whose
        host is the endpoint's (same spelling, or resolved to the same address by
        `locate_services`), else — without an endpoint — the head.

        A service whose host is none of the nodes raises ServiceNotOnNode: its docker
        commands must never go to another node.
        """
        if service in self.config.service_nodes:
            return self.nodes[self.config.service_nodes[service]]
        if service in self._located:
            return self._located[service]
        endpoint = self.config.endpoints.get(service)
        if endpoint is None:
            return self.head
        for node in self.nodes.values():
            if same_host(node.host, endpoint.host):
                return node
        raise ServiceNotOnNode(service, endpoint.host)

    async def locate_services(self) -> dict[str, str | None]:
        """Place the services `node_for` cannot place by spelling: resolve the endpoint's and
        the nodes' hosts and match their addresses (a host name against an IP). Returns
        service → node key, None for a service on a host that is not a node."""
        placement: dict[str, str | None] = {}
        node_addresses: dict[str, frozenset[str]] | None = None
        for service in self.config.endpoints:
            try:
                placement[service] = self.node_for(service).name
                continue
            except ServiceNotOnNode:
                pass
            if node_addresses is None:
                node_addresses = {
                    name: await resolve(node.host) for name, node in self.nodes.items()
                }
            wanted = await resolve(self.config.endpoints[service].host)
            matches = [name for name, found in node_addresses.items() if found & wanted]
            # Nodes sharing an address: the default placement (speech on the second node).
            keys = list(self.nodes)
            preferred = keys[0] if service == VLLM or len(keys) == 1 else keys[1]
            match = preferred if preferred in matches else next(iter(matches), None)
            if match is not None:
                self._located[service] = self.nodes[match]
            placement[service] = match
        return placement

    async def validate(self) -> dict[str, str]:
        """Connect to every node, pin unknown host keys, run the probe: node key -> fingerprint.

        Raises the first node's error (CannotConnect, AuthRejected, HostKeyChanged); the
        exception's `host` says which node.
        """
        fingerprints: dict[str, str] = {}
        for name, node in self.nodes.items():
            if node.pinned_host_key is None:
                node.pin(await node.fetch_host_key())
            await node.run(probe(), timeout=15)
            fingerprints[name] = node.pinned_fingerprint or ""
        return fingerprints

    async def service_action(self, service: str, action: DockerAction) -> None:
        """`docker start|stop|restart` the service's container on its node.

        vLLM is stopped with `launch-cluster.sh stop` (its container on every node; run with
        `--rm`, so it is gone afterwards). It cannot be started or restarted this way: its
        container runs `sleep infinity` and vLLM is a process launched inside it, so a swap
        (`swap`) is its only start; asked to, this raises InvalidInput before sending anything.
        """
        if service == VLLM:
            if action != "stop":
                raise InvalidInput("action", "vLLM starts only through a launch (swap)")
            await self.head.run(stop_cluster(self.config.repo_path), timeout=120)
            return
        command = docker_action(action, self.container(service))
        await self.node_for(service).run(command, timeout=120)

    async def containers(self) -> dict[str, ContainerInfo | None]:
        """Each service's container state (None when the container does not exist, or the
        service runs on a host that is not a node)."""
        nodes: dict[str, SshNode] = {}
        for service in SERVICES:
            with contextlib.suppress(ServiceNotOnNode):
                nodes[service] = self.node_for(service)
        listings: dict[str, dict[str, ContainerInfo]] = {}
        for node in dict.fromkeys(nodes.values()):
            result = await node.run(docker_ps(), timeout=30)
            listings[node.name] = parse_docker_ps(result.stdout)
        return {
            service: listings[nodes[service].name].get(self.container(service))
            if service in nodes
            else None
            for service in SERVICES
        }

    def base_url(self, service: str) -> str:
        """`http://host:port` of a service, from `ClusterConfig.endpoints` (the one place)."""
        return self.api.url(service)

    def deep_prober(self, *, clip_wav: bytes, timeout: float) -> DeepProber:
        """Deep probes of the configured services (see `probes.DeepProber`)."""
        urls = {service: self.base_url(service) for service in self.config.endpoints}
        return DeepProber(self._session, urls, clip_wav=clip_wav, timeout=timeout)

    async def gpu_stats(self) -> dict[str, list[GpuStats]]:
        """GPU readings per node key, queried concurrently.

        Nodes that fail are left out (logged at debug level) so one node down does not blank
        the other's sensors; if every node fails, the first error is raised.
        """

        async def query(node: SshNode) -> list[GpuStats]:
            return await self.node_gpus(node.name)

        return await self._on_every_node(query, "GPU stats")

    async def node_gpus(self, node: str) -> list[GpuStats]:
        """One node's GPU readings. A single GPU without framebuffer numbers (GB10: unified
        memory, `[N/A]`) gets the system memory from `/proc/meminfo` instead."""
        if node not in self.nodes:
            raise InvalidInput("node", f"unknown node: {node}")
        ssh = self.nodes[node]
        gpus = parse_nvidia_smi((await ssh.run(nvidia_smi_query(), timeout=30)).stdout)
        if len(gpus) == 1 and gpus[0].memory_used_mib is None:
            memory = parse_meminfo((await ssh.run(meminfo_read(), timeout=30)).stdout)
            gpus = [
                replace(gpus[0], memory_used_mib=memory.used_mib, memory_total_mib=memory.total_mib)
            ]
        return gpus

    async def vllm_gpu_power(self) -> float | None:
        """The power the GPUs of vLLM's node draw now (W, summed); None when the driver
        reports none. Raises SparkError when the node cannot be asked."""
        gpus = await self.node_gpus(self.node_for(VLLM).name)
        readings = [gpu.power_w for gpu in gpus if gpu.power_w is not None]
        return sum(readings) if readings else None

    async def vllm_server_running(self) -> bool | None:
        """Whether a vLLM server process runs in vLLM's container (on its node); None when
        the container does not run (stopped, removed) or cannot be listed. Tells a server that
        exited on its own (False: the container runs on `sleep infinity`) from one that was
        stopped with its container."""
        command = docker_top(self.container(VLLM))
        result = await self.node_for(VLLM).run(command, timeout=30, check=False)
        if result.exit_status != 0:
            return None
        return runs_vllm_server(result.stdout)

    async def vllm_log(self, since: datetime) -> AsyncGenerator[str]:
        """Follow the vLLM container's log from `since` (aware), line by line, until the
        container stops or the caller closes the iterator (which ends `docker logs -f`)."""
        command = docker_logs(self.container(VLLM), follow=True, since=since)
        stream = self.node_for(VLLM).stream_lines(command)
        async with contextlib.aclosing(stream):
            async for line in stream:
                yield line

    async def node_facts(self) -> dict[str, NodeFacts]:
        """Host name, GPU model and driver of every node that answers (read for the devices;
        a node that fails is left out and keeps its configured name; none: the first error)."""

        async def read(node: SshNode) -> NodeFacts:
            hostname = await node.run(hostname_query(), timeout=15)
            gpus = await node.run(gpu_identity_query(), timeout=15)
            return parse_node_facts(hostname.stdout, gpus.stdout)

        return await self._on_every_node(read, "Node facts")

    async def swap(
        self,
        entry: ModelEntry,
        *,
        timeout: float,  # noqa: ASYNC109  (the deadline is part of the API)
        on_progress: ProgressCallback | None = None,
        claim: SwapClaim | None = None,
    ) -> SwapResult:
        """Swap vLLM to `entry` across this cluster's nodes (see `SwapRunner.swap`)."""
        return await self.swapper.swap(
            entry, nodes=self.hosts, timeout=timeout, on_progress=on_progress, claim=claim
        )

    async def check_updates(self) -> SoftwareUpdate:
        """Fetch upstream on the head and compare it with the spark-vllm-docker checkout."""
        result = await self.head.run(update_check(self.config.repo_path), timeout=120)
        return parse_update_check(result.stdout)

    async def apply_update(self) -> AsyncGenerator[str]:
        """Pull spark-vllm-docker on the head and rebuild/copy the image, line by line.

        The last line is `Done.` on success; a failing step raises CommandFailed after its
        output (the last lines in `stderr`). Takes minutes: iterate it in a background task.
        """
        stream = self.head.stream_lines(update_apply(self.config.repo_path), check=True)
        async with contextlib.aclosing(stream):
            async for line in stream:
                yield line

    def model_download(self, repo_id: str, *, all_nodes: bool) -> ModelDownload:
        """A download of `repo_id` to the head alone or to every node (see ModelDownload)."""
        nodes = list(self.nodes.values()) if all_nodes else [self.head]
        return ModelDownload(repo_id, nodes)

    async def speech_container_version(self) -> str | None:
        """The build-context digest of the running Parakeet container ("" for one not built
        by us, None when there is none)."""
        return await speech_container.installed_version(
            self.node_for(PARAKEET), self.container(PARAKEET)
        )

    async def deploy_speech_container(self, context: BuildContext) -> AsyncGenerator[str]:
        """Ship, build and (re)start the Parakeet container on its node, line by line (see
        `speech_container.deploy`); wait for `api.parakeet_healthy` afterwards."""
        stream = speech_container.deploy(self.node_for(PARAKEET), context, self.container(PARAKEET))
        async with contextlib.aclosing(stream):
            async for line in stream:
                yield line

    async def remove_speech_container(self) -> None:
        """`docker rm -f` the Parakeet container on its node (none there is fine)."""
        await speech_container.remove(self.node_for(PARAKEET), self.container(PARAKEET))

    async def disk_space(self) -> dict[str, DiskSpace]:
        """Each reachable node's home filesystem (nodes that fail are left out; if all
        fail, the first error is raised)."""
        return await self._on_every_node(read_disk_space, "Disk space")

    async def _on_every_node[T](
        self, query: Callable[[SshNode], Awaitable[T]], what: str
    ) -> dict[str, T]:
        """Run `query` on every node at once: node key → result for the nodes that answered
        (the others are logged at debug level); if none answered, the first error is raised."""
        nodes = list(self.nodes.values())
        results = await asyncio.gather(*(query(node) for node in nodes), return_exceptions=True)
        answers: dict[str, T] = {}
        errors: list[SparkError] = []
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, SparkError):
                _LOGGER.debug("%s of %s unavailable: %s", what, node.name, result)
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                answers[node.name] = result
        if errors and not answers:
            raise errors[0]
        return answers

    async def close(self) -> None:
        """Close every SSH connection (HTTP uses the injected session, which we do not own)."""
        await asyncio.gather(*(node.close() for node in self.nodes.values()))
