"""Everything an SSH command can see or change on the simulated cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.sim.config import SimConfig
from tests.sim.containers import Container
from tests.sim.docker_engine import DockerEngine
from tests.sim.faults import FaultState
from tests.sim.node_storage import NodeStorage
from tests.sim.repo_state import RepoState
from tests.sim.vllm_service import VllmService


@dataclass(frozen=True)
class Image:
    """A built image on one node."""

    tag: str
    labels: dict[str, str]
    id: str


@dataclass
class SimWorld:
    config: SimConfig
    faults: FaultState
    node_names: list[str]
    containers: dict[str, Container]
    docker: DockerEngine
    vllm: VllmService
    repo: RepoState
    storage: list[NodeStorage] = field(default_factory=list)  # one per node
    downloaded: set[str] = field(default_factory=set)
    homes: list[Path] = field(default_factory=list)  # each node's home dir on disk (SFTP)
    images: list[dict[str, Image]] = field(default_factory=list)  # per node: tag -> image
    # per node index: nvidia-smi fields its GPU reports as `[N/A]` (a GPU without that sensor)
    unreported_gpu_fields: dict[int, set[str]] = field(default_factory=dict)
    # per node index: the enforced power limit (W) its GPU reports; others print `[N/A]`, as a
    # GB10 does (it has no power cap to report)
    gpu_power_limits: dict[int, float] = field(default_factory=dict)

    def containers_on(self, node_index: int) -> list[Container]:
        return [c for c in self.containers.values() if c.node_index == node_index and not c.removed]

    def container_on(self, node_index: int, name: str) -> Container | None:
        container = self.containers.get(name)
        if container is None or container.node_index != node_index or container.removed:
            return None
        return container
