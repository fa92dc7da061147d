"""Everything an SSH command can see or change on the simulated cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.sim.config import SimConfig
from tests.sim.containers import Container
from tests.sim.docker_engine import DockerEngine
from tests.sim.faults import FaultState
from tests.sim.vllm_service import VllmService


@dataclass
class RepoState:
    """The spark-vllm-docker checkout: how far behind upstream it is, and whether builds fail."""

    behind: int = 0
    head: str = "3f9c2e1"
    build_fails: bool = False


@dataclass
class SimWorld:
    config: SimConfig
    faults: FaultState
    node_names: list[str]
    containers: dict[str, Container]
    docker: DockerEngine
    vllm: VllmService
    repo: RepoState
    downloaded: set[str] = field(default_factory=set)

    def containers_on(self, node_index: int) -> list[Container]:
        return [c for c in self.containers.values() if c.node_index == node_index]

    def container_on(self, node_index: int, name: str) -> Container | None:
        container = self.containers.get(name)
        if container is None or container.node_index != node_index:
            return None
        return container
