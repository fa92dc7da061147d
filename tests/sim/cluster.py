"""`SimCluster`: the whole simulated GPU cluster as one async context manager."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

from tests.sim.commands.launch_cluster import start_and_serve
from tests.sim.config import SimConfig
from tests.sim.containers import Container
from tests.sim.docker_engine import DockerEngine
from tests.sim.faults import Faults, FaultState
from tests.sim.magpie_service import MagpieService
from tests.sim.node_storage import CachedRepo, NodeStorage, repo_files
from tests.sim.parakeet_service import ParakeetService
from tests.sim.repo_state import RepoState
from tests.sim.scratch_dirs import make_home, remove_home, remove_stale_homes
from tests.sim.service import SimService
from tests.sim.ssh_node import SimNode
from tests.sim.vllm_service import VllmService
from tests.sim.world import SimWorld

VLLM_CONTAINER = "vllm_node"
PARAKEET_CONTAINER = "parakeet-asr"
MAGPIE_CONTAINER = "magpie-tts"


class SimCluster:
    """Simulated nodes (real SSH servers) and services (real HTTP servers) on 127.0.0.1.

    vLLM runs on node 0; Parakeet and Magpie on node 1 (node 0 in a one-node cluster).
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.nodes: list[SimNode] = []
        self.containers: dict[str, Container] = {}
        self.repo = RepoState(behind=self.config.updates_behind)
        self._fault_state = FaultState()
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # fault-switch settling, cancelled on stop
        self._started = False

    @property
    def speech_node_index(self) -> int:
        return 1 if self.config.nodes > 1 else 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        config = self.config
        remove_stale_homes()  # left by a simulator process that was killed outright
        # Our own threads (recognition, resampling), shut down in stop(): nothing outlives the sim.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="spark-sim")
        speech = self.speech_node_index
        self.containers = {
            # launch-cluster.sh runs it `--rm` with `sleep infinity`; vLLM is exec'd inside.
            VLLM_CONTAINER: Container(
                VLLM_CONTAINER, "vllm-node:latest", 0, "sleep infinity", auto_remove=True
            ),
            PARAKEET_CONTAINER: Container(
                PARAKEET_CONTAINER, "parakeet-asr:latest", speech, "python -m uvicorn main:app"
            ),
            MAGPIE_CONTAINER: Container(
                MAGPIE_CONTAINER,
                "nvcr.io/nim/nvidia/magpie-tts-multilingual:latest",
                speech,
                "/opt/nim/start_server.sh",
            ),
        }
        for container in self.containers.values():
            container.mark_running()
        self.vllm = VllmService(self.containers[VLLM_CONTAINER], self._fault_state, config)
        self.parakeet = ParakeetService(
            self.containers[PARAKEET_CONTAINER], self._fault_state, config, self._executor
        )
        self.magpie = MagpieService(
            self.containers[MAGPIE_CONTAINER], self._fault_state, config, self._executor
        )
        self._seed_logs()
        world = SimWorld(
            config=config,
            faults=self._fault_state,
            node_names=[f"spark-{index + 1}" for index in range(config.nodes)],
            containers=self.containers,
            docker=DockerEngine(config),
            vllm=self.vllm,
            repo=self.repo,
            storage=[_node_storage(config) for _ in range(config.nodes)],
            # Real directories: files shipped over SFTP land here (removed in stop()).
            homes=[make_home(index) for index in range(config.nodes)],
            images=[{} for _ in range(config.nodes)],
        )
        world.downloaded.update(config.cached_models)
        self.world = world
        self.faults = Faults(
            self._fault_state,
            reconcile_ports=self._reconcile_ports,
            swap_host_key=lambda index: self.nodes[index].change_host_key(),
            release_hangs=self._release_hangs,
            node_count=config.nodes,
            engine_died=self.vllm.engine_died,
            server_killed=self.vllm.kill_server,
        )
        self.nodes = [SimNode(index, name, world) for index, name in enumerate(world.node_names)]
        self._started = True
        try:
            for node in self.nodes:
                await node.start()
            for service in self.services:
                await service.start()
        except BaseException:
            await self.stop()  # __aexit__ never runs when __aenter__ fails
            raise

    @property
    def services(self) -> list[SimService]:
        return [self.vllm, self.parakeet, self.magpie]

    def _seed_logs(self) -> None:
        """Containers that were already up before the sim started have a startup history."""
        self.vllm.container.log("INFO:     Started server process [1]")
        self.vllm.container.log("INFO:     Application startup complete.")
        self.parakeet.container.log("INFO:     Uvicorn running on http://0.0.0.0:8000")
        self.parakeet.container.log("INFO:     Application startup complete.")
        self.magpie.container.log("INFO:     Uvicorn running on http://0.0.0.0:9000")
        self.magpie.container.log("Triton server is ready; Magpie TTS NIM started.")

    def _reconcile_ports(self) -> asyncio.Task[None]:
        tasks = [service.port.reconcile() for service in self.services]

        async def settle() -> None:
            await asyncio.gather(*tasks)

        task = asyncio.get_running_loop().create_task(settle())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _release_hangs(self) -> None:
        for service in self.services:
            service.release_hangs()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for task in list(self._tasks):
            task.cancel()
        try:
            for node in self.nodes:
                await node.stop()
            for service in self.services:
                await service.shutdown()
        finally:
            for home in self.world.homes:
                remove_home(home)
            if self._executor is not None:
                executor, self._executor = self._executor, None
                # Recognition jobs are short; waiting here keeps thread-leak checks happy.
                executor.shutdown(wait=True, cancel_futures=True)

    async def serve_model(self, model: str, *, stopped_s: float = 0.0) -> None:
        """Swap vLLM to `model` the way `launch-cluster.sh stop` and then `launch-cluster.sh -d
        exec vllm serve` do, without SSH.

        The container stops and goes (connections refused) for `stopped_s` (the launcher
        tearing the cluster down), a new one starts, the server loads the model for
        `load_seconds` (/health 503) and serves.
        """
        await self.world.docker.stop(self.world.vllm.container)
        await asyncio.sleep(stopped_s)
        await start_and_serve(self.world, model, None)

    def endpoints(self) -> dict[str, Any]:
        """What `.demo/endpoints.json` holds: how to reach every node and service."""
        services: dict[str, Any] = {}
        for service in self.services:
            services[service.name] = {
                "url": service.url,
                "host": service.port.host,
                "port": service.port.port,
                "node": service.container.node_index,
                "container": service.container.name,
            }
        services["vllm"]["model"] = self.vllm.model
        return {
            "username": self.config.username,
            "repo_path": self.config.repo_path,
            "nodes": [
                {
                    "index": node.index,
                    "name": node.name,
                    "host": node.host,
                    "ssh_port": node.ssh_port,
                    "host_key_fingerprint": node.host_key_fingerprint,
                    "host_public_key": node.host_public_key,
                }
                for node in self.nodes
            ],
            "services": services,
        }


def _node_storage(config: SimConfig) -> NodeStorage:
    """A node's disk with the configured models already downloaded."""
    storage = NodeStorage(size=config.disk_bytes, free=config.disk_free_bytes)
    for repo_id in config.cached_models:
        files = repo_files(config.model_bytes.get(repo_id, config.default_model_bytes))
        repo = storage.hf_cache[repo_id] = CachedRepo(repo_id, files)
        for file in files:
            storage.write(repo, file, file.size)
    return storage
