"""Fault switches tests flip to make the simulated cluster misbehave on the real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

SERVICE_NAMES = ("vllm", "parakeet", "magpie")


@dataclass
class FaultState:
    """The switches themselves; the fakes read them on every request or command."""

    wedged: set[str] = field(default_factory=set)
    hung: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    slow_start_seconds: float = 0.0
    crash_on_load: bool = False
    oom_models: set[str] = field(default_factory=set)  # repo ids whose load runs out of memory
    killed_models: set[str] = field(default_factory=set)  # repo ids whose load is killed silently
    drop_ssh_mid_command: bool = False
    rejected_key_nodes: set[int] = field(default_factory=set)
    download_fails_at: float | None = None  # fraction of the bytes after which a download dies
    # The hub gives no size for the largest file to fetch (huggingface_hub 2.x's dry run then
    # says "an unknown size").
    hub_hides_a_size: bool = False
    docker_build_fails: bool = False  # `docker build` fails at its first RUN step
    # vLLM engine faults, each gone with the next `vllm serve` (a fresh engine).
    frozen_generation: bool = False  # tokens stop mid-answer; requests stay running
    # Every vLLM request's prefill takes this long (GPU busy); a property of the prompts, so it
    # outlives a restart.
    prefill_seconds: float = 0.0
    engine_dead: bool = False  # the engine core died; the API server still runs

    def clear_vllm_engine(self) -> None:
        """Forget the vLLM engine faults (a fresh vLLM process starts without them)."""
        self.frozen_generation = False
        self.engine_dead = False


class Faults:
    """Public fault API (`sim.faults`).

    Switches that change a port (`refuse`, `clear`) close it before returning and hand back a
    task that finishes the job; await it when the next step needs the port fully settled.
    """

    def __init__(
        self,
        state: FaultState,
        reconcile_ports: Callable[[], asyncio.Task[None]],
        swap_host_key: Callable[[int], None],
        release_hangs: Callable[[], None],
        node_count: int,
        engine_died: Callable[[bool], None] = lambda _exit: None,
        server_killed: Callable[[], asyncio.Task[None]] | None = None,
    ) -> None:
        self.state = state
        self._reconcile_ports = reconcile_ports
        self._swap_host_key = swap_host_key
        self._release_hangs = release_hangs
        self._node_count = node_count
        self._engine_died = engine_died
        self._server_killed = server_killed

    @staticmethod
    def _check_service(service: str) -> None:
        if service not in SERVICE_NAMES:
            raise ValueError(f"unknown service {service!r}; expected one of {SERVICE_NAMES}")

    def _check_node(self, node_index: int) -> None:
        if not 0 <= node_index < self._node_count:
            raise ValueError(f"no node {node_index} in a {self._node_count}-node cluster")

    def wedge(self, service: str = "parakeet") -> None:
        """Work requests answer 500 (CUBLAS_STATUS_EXECUTION_FAILED); health stays 200.

        Cleared by restarting the service's container or by `clear()`.
        """
        self._check_service(service)
        self.state.wedged.add(service)

    def hang(self, service: str) -> None:
        """Connections are accepted and requests read, but nothing is ever answered."""
        self._check_service(service)
        self.state.hung.add(service)

    def refuse(self, service: str) -> asyncio.Task[None]:
        """Close the service's port while its container keeps running."""
        self._check_service(service)
        self.state.refused.add(service)
        return self._reconcile_ports()

    def slow_start(self, seconds: float) -> None:
        """Every container start (and vLLM model load) takes this many extra seconds."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.state.slow_start_seconds = seconds

    def crash_on_load(self, enabled: bool = True) -> None:
        """vLLM loads end in a CUDA out-of-memory traceback and the server process exits (its
        container keeps running `sleep infinity`)."""
        self.state.crash_on_load = enabled

    def oom_on_load(self, repo_id: str) -> None:
        """Loads of this model (only) end in the CUDA out-of-memory crash; others load."""
        self.state.oom_models.add(repo_id)

    def kill_on_load(self, repo_id: str) -> None:
        """Loads of this model are killed without a line in the log (the kernel's OOM killer
        takes vLLM's server): its port closes, its container runs on `sleep infinity`."""
        self.state.killed_models.add(repo_id)

    def freeze_generation(self) -> None:
        """vLLM's engine stops stepping (a multi-node collective that never returns): streams
        stall mid-answer, new requests are admitted but never get a token, the token counters
        stop, `num_requests_running` stays above 0, GPU power falls to idle and `/health` stays
        200. Gone with the next `vllm serve`."""
        self.state.frozen_generation = True

    def slow_prefill(self, seconds: float) -> None:
        """Every vLLM request spends `seconds` in prefill before its first token (a very long
        prompt): running > 0, no generation tokens yet, the GPU busy; the prompt tokens are
        counted when the prefill completes, as vLLM's V1 engine counts them."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.state.prefill_seconds = seconds

    def kill_engine(self, *, exit_server: bool = False) -> None:
        """vLLM's engine core process dies: the container log gets vLLM's engine-death lines;
        the API server then answers `/health` 503 and every request 500 (vLLM 0.11 with
        `VLLM_KEEP_ALIVE_ON_ENGINE_DEATH`), or with `exit_server` the server shuts down (vLLM's
        default; its container keeps running `sleep infinity`). Gone with the next `vllm serve`."""
        self.state.engine_dead = True
        self._engine_died(exit_server)

    def kill_server(self) -> asyncio.Task[None]:
        """vLLM's server process is killed while it serves (the kernel's OOM killer, a
        segfault): nothing more is written to its log, its port closes, its container runs on
        `sleep infinity`. Hand back the port's task, as `refuse` does."""
        if self._server_killed is None:
            raise RuntimeError("this simulator has no vLLM server to kill")
        return self._server_killed()

    def drop_ssh_mid_command(self, enabled: bool = True) -> None:
        """Each SSH command writes its first output, then the TCP connection is cut."""
        self.state.drop_ssh_mid_command = enabled

    def change_host_key(self, node_index: int) -> None:
        """The node presents a new host key to every new connection (pinning must catch it)."""
        self._check_node(node_index)
        self._swap_host_key(node_index)

    def reject_key(self, node_index: int) -> None:
        """The node refuses every client key (authentication fails)."""
        self._check_node(node_index)
        self.state.rejected_key_nodes.add(node_index)

    def fail_downloads_at(self, fraction: float | None) -> None:
        """`hf download` dies with a network error once this fraction of the bytes is stored
        (the partial blob stays, as on a real node); None switches it off."""
        if fraction is not None and not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        self.state.download_fails_at = fraction

    def hide_a_file_size(self, enabled: bool = True) -> None:
        """The hub's answer for the largest file `hf download` still has to fetch carries no
        size: the dry run says "totalling an unknown size" and lists that file's size as "-"
        (huggingface_hub 2.x's words, tests/sparklib/hf_output/hub-2.4-dry-run-*)."""
        self.state.hub_hides_a_size = enabled

    def fail_docker_builds(self, enabled: bool = True) -> None:
        """`docker build` fails at the Dockerfile's first RUN step (as a broken pip install)."""
        self.state.docker_build_fails = enabled

    def clear(self) -> asyncio.Task[None]:
        """Switch every fault off (a changed host key stays changed, as on a reinstalled box)."""
        self.state.wedged.clear()
        self.state.hung.clear()
        self.state.refused.clear()
        self.state.slow_start_seconds = 0.0
        self.state.crash_on_load = False
        self.state.oom_models.clear()
        self.state.killed_models.clear()
        self.state.drop_ssh_mid_command = False
        self.state.rejected_key_nodes.clear()
        self.state.download_fails_at = None
        self.state.hub_hides_a_size = False
        self.state.docker_build_fails = False
        self.state.clear_vllm_engine()
        self.state.prefill_seconds = 0.0
        self._release_hangs()
        return self._reconcile_ports()
