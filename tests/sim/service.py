"""What the three HTTP fakes share: a container behind them, a port, and the hang/wedge faults."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from tests.sim.config import SimConfig
from tests.sim.containers import Container
from tests.sim.faults import FaultState
from tests.sim.http_port import ServicePort

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WEDGE_ERROR = (
    "CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling "
    "`cublasGemmEx( handle, opa, opb, m, n, k, &falpha, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, "
    "ldb, &fbeta, c, CUDA_R_16BF, ldc, compute_type, CUBLAS_GEMM_DEFAULT_TENSOR_OP)`"
)


class SimService:
    """An HTTP fake bound to a container: it listens only while the container runs and has booted.

    Subclasses provide `build_routes(app)` and may override `boot_seconds()` and `on_started()`.
    """

    name: str = ""

    def __init__(self, container: Container, faults: FaultState, config: SimConfig) -> None:
        self.container = container
        self.faults = faults
        self.config = config
        self.booted = container.running
        self._boot_task: asyncio.Task[None] | None = None
        self._serving = asyncio.Event()  # set once the booted process's port is open
        self._hang_release = asyncio.Event()
        self._closing = False  # set at shutdown: hung requests then end instead of waiting
        self.port = ServicePort(config.host, self.create_app, self.should_listen)
        container.on_state_change(self._container_changed)

    @property
    def url(self) -> str:
        return self.port.url

    @property
    def wedged(self) -> bool:
        return self.name in self.faults.wedged

    def should_listen(self) -> bool:
        return self.container.running and self.booted and self.name not in self.faults.refused

    def boot_seconds(self) -> float:
        return self.config.restart_delay + self.faults.slow_start_seconds

    def on_started(self) -> None:
        """Called when the container enters running (before the boot delay)."""
        for line in self.starting_log():
            self.container.log(line)

    def starting_log(self) -> list[str]:
        """Lines the process prints as it starts (before its port opens)."""
        return [
            "INFO:     Started server process [1]",
            "INFO:     Waiting for application startup.",
        ]

    def ready_log(self) -> list[str]:
        """Lines the process prints once it serves."""
        return ["INFO:     Application startup complete."]

    def on_stopped(self) -> None:
        """Called when the container leaves running."""

    def release_hangs(self) -> None:
        self._hang_release.set()
        self._hang_release = asyncio.Event()

    async def wait_serving(self, timeout: float = 30) -> None:
        """Wait until the process has booted and its port is open (after a (re)start), as a
        client that keeps trying would find it; the deadline allows for a stalled machine."""
        async with asyncio.timeout(timeout):
            await self._serving.wait()

    def _container_changed(self, container: Container) -> None:
        self._serving.clear()
        if self._boot_task is not None:
            self._boot_task.cancel()
            self._boot_task = None
        if container.running:
            # A restarted process has a fresh CUDA context: the wedge and any hang are gone.
            self.faults.wedged.discard(self.name)
            self.faults.hung.discard(self.name)
            self.release_hangs()
            self.booted = False
            self.on_started()
            self._boot_task = asyncio.get_running_loop().create_task(self._boot())
        else:
            self.booted = False
            self.on_stopped()
        self.port.reconcile()

    async def _boot(self) -> None:
        await asyncio.sleep(self.boot_seconds())
        self.booted = True
        await self.port.reconcile()
        self._serving.set()
        for line in self.ready_log():
            self.container.log(line)

    async def start(self) -> None:
        await self.port.reconcile()
        if self.booted:
            self._serving.set()

    async def shutdown(self) -> None:
        if self._boot_task is not None:
            self._boot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._boot_task
        self._closing = True
        self.release_hangs()
        await self.port.shutdown()

    def create_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._access_log_middleware, self._hang_middleware],
            client_max_size=self.config.max_upload_bytes,
        )
        self.build_routes(app)
        return app

    def build_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @web.middleware
    async def _hang_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        while self.name in self.faults.hung and not self._closing:
            # The request was read; the answer never comes (until the fault is cleared or the
            # simulator shuts down: no request task may outlive it).
            await self._hang_release.wait()
        return await handler(request)

    @web.middleware
    async def _access_log_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        response = await handler(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client = f"{peer[0]}:{peer[1]}" if peer else "127.0.0.1:0"
        reason = response.reason or ""
        self.container.log(
            f'INFO:     {client} - "{request.method} {request.path} HTTP/1.1" '
            f"{response.status} {reason}"
        )
        return response
