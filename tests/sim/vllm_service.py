"""The vLLM server process inside `vllm_node`: model load with realistic logs, then generation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime

from aiohttp import web

from tests.sim.config import SimConfig
from tests.sim.containers import Container
from tests.sim.docker_time import now
from tests.sim.faults import FaultState
from tests.sim.service import SimService
from tests.sim.vllm_metrics import VllmMetrics

VLLM_VERSION = "0.11.0"
LOADING = "loading"
READY = "ready"
STOPPED = "stopped"


def vllm_log_prefix(level: str, source: str, moment: datetime | None = None) -> str:
    """vLLM's logger format: `INFO 11-21 09:10:11 [api_server.py:1885]`."""
    stamp = (moment or now()).strftime("%m-%d %H:%M:%S")
    return f"{level} {stamp} [{source}]"


class VllmService(SimService):
    """vLLM's OpenAI-compatible server; /health is 503 while a model loads, 200 once served.

    As on spark-vllm-docker, the container `vllm_node` itself runs `sleep infinity`: the server
    is a process `launch-cluster.sh ... exec vllm serve` starts inside it (`serve`). Stopping or
    restarting the container ends that process and nothing starts it again; it also ends by
    itself when its model load crashes or its engine dies (the container keeps running).
    """

    name = "vllm"

    def __init__(self, container: Container, faults: FaultState, config: SimConfig) -> None:
        self.model = config.served_model
        self.max_model_len = config.max_model_len
        # The simulator starts with vLLM already serving inside its running container.
        self.process_running = container.running
        self.phase = READY if container.running else STOPPED
        self.metrics = VllmMetrics(self.model)
        self.loaded_at = time.time()
        self._load_task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(config.max_num_seqs)
        self._kv_tokens_in_use = 0
        self.active_requests = 0
        self.waiting_requests = 0  # queued for a sequence slot (num_requests_waiting)
        self.stalled_requests = 0  # running requests the frozen engine holds (no GPU work)
        # Set when the engine steps again, restarts or the simulator stops (frozen streams).
        self._engine_moved = asyncio.Event()
        self._engine_epoch = 0  # a new engine process per start
        super().__init__(container, faults, config)
        self.booted = container.running  # the port opens at once; loading is reported by /health

    def boot_seconds(self) -> float:
        return 0.0

    def should_listen(self) -> bool:
        return super().should_listen() and self.process_running

    def starting_log(self) -> list[str]:
        return []  # `sleep infinity` prints nothing

    def ready_log(self) -> list[str]:
        return []  # the model load writes its own lines, ending with startup complete

    async def serve(self, model: str, max_model_len: int | None) -> bool:
        """`vllm serve MODEL` started inside the running container (`docker exec -d`); False
        when a server already holds the port (the new process dies, the old one serves on)."""
        if self.process_running:
            self._bind_failed()
            return False
        self.model = model
        self.max_model_len = max_model_len or self.config.max_model_len
        self.process_running = True
        # A fresh engine process: no freeze, no death, no wedge (frozen streams of the old end).
        self.faults.clear_vllm_engine()
        self.faults.wedged.discard(self.name)
        self.faults.hung.discard(self.name)
        self._new_engine()
        self.phase = LOADING
        self.metrics = VllmMetrics(self.model)
        self._kv_tokens_in_use = 0
        self._slots = asyncio.Semaphore(self.config.max_num_seqs)
        self._cancel_load()
        self._load_task = asyncio.get_running_loop().create_task(self._load())
        self.container.changed()
        await self.port.reconcile()  # the API server binds its port before the engine loads
        if self.process_running:
            self._serving.set()
        return True

    def _process_exited(self) -> asyncio.Task[None]:
        """The server process ended (crash, engine death): its port closes, the container stays."""
        self.process_running = False
        self.phase = STOPPED
        self._new_engine()
        self._serving.clear()
        closing = self.port.reconcile()
        self.container.changed()
        return closing

    def kill_server(self) -> asyncio.Task[None]:
        """SIGKILL of the server process (`faults.kill_server`): no line in the log."""
        self._cancel_load()
        return self._process_exited()

    def processes(self) -> list[str]:
        """The command lines running in the container, as `docker top` lists them."""
        if not self.container.running:
            return []
        lines = [self.container.command]
        if self.process_running:
            lines.append(
                f"/usr/bin/python3 /usr/local/bin/vllm serve {self.model} --host 0.0.0.0 "
                "--port 8888"
            )
        return lines

    def _bind_failed(self) -> None:
        p = vllm_log_prefix
        log = self.container.log
        log(f"{p('INFO', 'api_server.py:1885')} vLLM API server version {VLLM_VERSION}")
        log("Traceback (most recent call last):")
        log('  File "/usr/local/bin/vllm", line 10, in <module>')
        log("OSError: [Errno 98] Address already in use")

    def on_started(self) -> None:
        # The container (re)started: `sleep infinity`, no server until a `vllm serve`.
        self.process_running = False
        self.phase = STOPPED
        self._cancel_load()

    def on_stopped(self) -> None:
        self.process_running = False
        self.phase = STOPPED
        self._new_engine()
        self._cancel_load()

    async def _boot(self) -> None:
        # The container's own process (`sleep infinity`) opens no port.
        self.booted = True
        await self.port.reconcile()

    @property
    def busy_requests(self) -> int:
        """Requests the GPU works on (what its power and utilization follow)."""
        return self.active_requests - self.stalled_requests

    def _new_engine(self) -> None:
        self._engine_epoch += 1
        self.release_hangs()

    def release_hangs(self) -> None:
        super().release_hangs()
        self._engine_moved.set()
        self._engine_moved = asyncio.Event()

    @property
    def engine_dead(self) -> bool:
        return self.faults.engine_dead

    def engine_died(self, exit_server: bool) -> None:
        """Write what vLLM 0.11 logs when its engine core dies mid-serving."""
        p = vllm_log_prefix
        log = self.container.log
        engine = "(EngineCore_DP0 pid=412)"
        log(f"{engine} {p('ERROR', 'core.py:710')} EngineCore encountered a fatal error.")
        log(f"{engine} Traceback (most recent call last):")
        for where, line_no, func in (
            ("v1/engine/core.py", 701, "run_engine_core"),
            ("v1/engine/core.py", 728, "run_busy_loop"),
            ("v1/executor/multiproc_executor.py", 243, "execute_model"),
        ):
            path = f"/usr/local/lib/python3.12/dist-packages/vllm/{where}"
            log(f'{engine}   File "{path}", line {line_no}, in {func}')
        log(f"{engine} RuntimeError: CUDA error: an illegal memory access was encountered")
        log(
            f"{p('ERROR', 'core_client.py:564')} Engine core proc EngineCore_DP0 died "
            "unexpectedly, shutting down client."
        )
        log(f"{p('ERROR', 'async_llm.py:485')} AsyncLLM output_handler failed.")
        log(
            "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. "
            "See stack trace (above) for the root cause."
        )
        self.release_hangs()  # frozen or running requests end with the engine
        if exit_server:
            log(f"{p('ERROR', 'launcher.py:101')} Engine failed, terminating server.")
            log("INFO:     Shutting down")
            self._process_exited()

    async def _engine_step(self, epoch: int) -> None:
        """Return when the engine may produce the next token; raise when it died under the
        request (the client sees the connection drop, as when vLLM's process goes)."""
        while True:
            if epoch != self._engine_epoch or self._closing or self.faults.engine_dead:
                raise ConnectionResetError("the vLLM engine went away mid-request")
            if not self.faults.frozen_generation:
                return
            self.stalled_requests += 1
            self.container.changed()
            try:
                await self._engine_moved.wait()
            finally:
                self.stalled_requests -= 1
                self.container.changed()

    def _cancel_load(self) -> None:
        if self._load_task is not None and self._load_task is not asyncio.current_task():
            self._load_task.cancel()
        self._load_task = None

    async def shutdown(self) -> None:
        task = self._load_task
        self._cancel_load()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().shutdown()

    async def _load(self) -> None:
        duration = self.config.load_seconds + self.faults.slow_start_seconds
        log = self.container.log
        started = time.monotonic()

        async def at(fraction: float) -> None:
            delay = started + fraction * duration - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

        p = vllm_log_prefix
        log(f"{p('INFO', 'api_server.py:1885')} vLLM API server version {VLLM_VERSION}")
        log(
            f"{p('INFO', 'utils.py:328')} non-default args: {{'model': '{self.model}', "
            f"'max_model_len': {self.max_model_len}, 'host': '0.0.0.0', 'port': 8888}}"
        )
        log(f"{p('INFO', 'api_server.py:1819')} Starting vLLM API server 0 on http://0.0.0.0:8888")
        await at(0.15)
        log(f"{p('INFO', 'model.py:547')} Resolved architecture: Qwen3MoeForCausalLM")
        log(f"{p('INFO', 'gpu_model_runner.py:2338')} Starting to load model {self.model}...")
        await at(0.5)
        load_time = round(duration * 0.35 + 11.2, 2)
        log(f"{p('INFO', 'default_loader.py:267')} Loading weights took {load_time} seconds")
        log(
            f"{p('INFO', 'gpu_model_runner.py:2392')} Model loading took 21.4367 GiB "
            f"and {load_time + 1.1:.6f} seconds"
        )
        await at(0.7)
        if self.faults.crash_on_load or self.model in self.faults.oom_models:
            self._crash()
            return
        if self.model in self.faults.killed_models:
            self._process_exited()  # SIGKILL: nothing more is written
            return
        log(f"{p('INFO', 'kv_cache_utils.py:1087')} GPU KV cache size: 1,048,576 tokens")
        log(
            f"{p('INFO', 'kv_cache_utils.py:1091')} Maximum concurrency for "
            f"{self.max_model_len:,} tokens per request: 32.00x"
        )
        await at(0.9)
        log(f"{p('INFO', 'api_server.py:1633')} Supported_tasks: ['generate']")
        log(f"{p('INFO', 'launcher.py:34')} Available routes are:")
        for route, methods in (
            ("/health", "GET"),
            ("/metrics", "GET"),
            ("/v1/models", "GET"),
            ("/v1/chat/completions", "POST"),
            ("/v1/completions", "POST"),
            ("/v1/embeddings", "POST"),
        ):
            log(f"{p('INFO', 'launcher.py:42')} Route: {route}, Methods: {methods}")
        await at(1.0)
        log("INFO:     Started server process [1]")
        log("INFO:     Waiting for application startup.")
        # Ready before the line is written: a client that sees it and polls /health gets 200.
        self.phase = READY
        self.loaded_at = time.time()
        log("INFO:     Application startup complete.")

    async def wait_ready(self, timeout: float = 30) -> None:
        """Wait until a model load has finished and the model serves."""
        await self.container.wait_until(lambda _: self.phase == READY, timeout)

    def _crash(self) -> None:
        p = vllm_log_prefix
        log = self.container.log
        log(f"{p('ERROR', 'core.py:708')} EngineCore failed to start.")
        log("Traceback (most recent call last):")
        for where, line_no, func in (
            ("v1/engine/core.py", 699, "run_engine_core"),
            ("v1/engine/core.py", 498, "__init__"),
            ("v1/engine/core.py", 90, "__init__"),
            ("v1/core/kv_cache_utils.py", 684, "check_enough_kv_cache_memory"),
        ):
            path = f"/usr/local/lib/python3.12/dist-packages/vllm/{where}"
            log(f'  File "{path}", line {line_no}, in {func}')
        log(
            "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
            "capacity of 119.70 GiB of which 1.12 GiB is free. Including non-PyTorch memory, this "
            "process has 117.90 GiB memory in use."
        )
        self._process_exited()

    @contextlib.asynccontextmanager
    async def request_slot(self, prompt_tokens: int) -> AsyncIterator[None]:
        """Queue (num_requests_waiting) until a sequence slot frees, then run (running)."""
        metrics = self.metrics
        metrics.waiting.inc()
        self.waiting_requests += 1
        self.container.changed()
        try:
            await self._slots.acquire()
        finally:
            metrics.waiting.dec()
            self.waiting_requests -= 1
        metrics.running.inc()
        self.active_requests += 1
        self.container.changed()
        self._use_kv(prompt_tokens)
        try:
            yield
        finally:
            self.active_requests -= 1
            metrics.running.dec()
            self._slots.release()
            self.container.changed()

    def _use_kv(self, tokens: int) -> None:
        self._kv_tokens_in_use = max(0, self._kv_tokens_in_use + tokens)
        self.metrics.kv_cache_usage.set(
            min(1.0, self._kv_tokens_in_use / self.config.kv_cache_tokens)
        )

    async def stream_tokens(
        self, prompt_tokens: int, tokens: list[str], arrived: float
    ) -> AsyncGenerator[str]:
        """Yield tokens at `token_rate`; stopping iteration (client gone) stops generation.

        The prefill (`faults.slow_prefill`) comes first; the prompt tokens are counted with
        the first token, as vLLM's V1 engine counts them (it reports no partial prefill).
        """
        epoch = self._engine_epoch
        async with self.request_slot(prompt_tokens):
            metrics = self.metrics
            produced = 0
            try:
                if self.faults.prefill_seconds:
                    await asyncio.sleep(self.faults.prefill_seconds)
                start = time.monotonic()
                for index, token in enumerate(tokens):
                    delay = start + (index + 1) / self.config.token_rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await self._engine_step(epoch)
                    if index == 0:
                        metrics.prompt_tokens.inc(prompt_tokens)
                        metrics.time_to_first_token.observe(time.monotonic() - arrived)
                    metrics.generation_tokens.inc()
                    produced += 1
                    self._use_kv(1)
                    yield token
            finally:
                self._use_kv(-(prompt_tokens + produced))

    def build_routes(self, app: web.Application) -> None:
        from tests.sim.vllm_routes import add_vllm_routes

        add_vllm_routes(app, self)
