"""One simulated GPU node's SSH server (asyncssh): key-only auth; exec requests run the shell."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncssh

from tests.sim.commands.context import CommandContext
from tests.sim.keys import generate_host_key, public_line
from tests.sim.shell import run_command_line
from tests.sim.world import SimWorld

_SILENT_COMMAND_WAIT = 0.05  # how long a silent command runs before a drop fault cuts it
_FLUSH_BEFORE_CUT = 0.02  # lets the first output reach the client before the cut


class _NodeServer(asyncssh.SSHServer):
    """Per-connection auth policy: the configured user, one of the authorized keys, no passwords."""

    def __init__(self, node: SimNode) -> None:
        self._node = node
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._node.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._node.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # always require authentication

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        node = self._node
        if node.index in node.world.faults.rejected_key_nodes:
            return False
        if username != node.world.config.username:
            return False
        return key.public_data in node.authorized_key_data


class SimNode:
    """A GPU box reachable over SSH on 127.0.0.1:<ssh_port>."""

    def __init__(self, index: int, name: str, world: SimWorld) -> None:
        self.index = index
        self.name = name
        self.world = world
        self.host = world.config.host
        self.ssh_port = 0
        self.commands: list[str] = []
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.authorized_key_data = {
            asyncssh.import_public_key(line).public_data for line in world.config.authorized_keys
        }
        self._host_key = generate_host_key()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._tasks: set[asyncio.Task[int]] = set()

    @property
    def host_key_fingerprint(self) -> str:
        return self._host_key.get_fingerprint("sha256")

    @property
    def host_public_key(self) -> str:
        return public_line(self._host_key)

    async def start(self) -> None:
        self._acceptor = await asyncssh.create_server(
            lambda: _NodeServer(self),
            self.host,
            0,
            server_host_keys=[self._host_key],
            process_factory=self._handle,
            encoding="utf-8",
            allow_scp=False,
            # SFTP in a jail: the node's home directory on this machine (paths are relative to
            # it, as a real server starts SFTP sessions in the user's home).
            sftp_factory=lambda chan: asyncssh.SFTPServer(
                chan, chroot=str(self.world.homes[self.index]).encode()
            ),
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=0,
        )
        self.ssh_port = self._acceptor.get_port()

    def change_host_key(self) -> None:
        """New connections see a different host key (a reinstalled node, or an impostor)."""
        self._host_key = generate_host_key()
        if self._acceptor is not None:
            self._acceptor.update(server_host_keys=[self._host_key])

    async def drop_connections(self) -> None:
        """Cut every SSH connection to this node (a reboot, a network blip) and wait until each
        has closed; a client notices on its next command."""
        for conn in list(self.connections):
            conn.close()
        await self.wait_disconnected()

    async def wait_disconnected(self, timeout: float = 30) -> None:
        """Wait until every SSH connection to this node has closed (the client hung up)."""
        async with asyncio.timeout(timeout):
            for conn in list(self.connections):
                await conn.wait_closed()

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
        for conn in list(self.connections):
            conn.close()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 2.0)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._acceptor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._acceptor.wait_closed(), 2.0)
            self._acceptor = None

    async def _handle(self, process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command
        if command is None:
            process.stderr.write("This node accepts commands only (no interactive shell).\n")
            process.exit(1)
            return
        self.commands.append(command)
        closed = asyncio.Event()
        dropping = self.world.faults.drop_ssh_mid_command
        conn: asyncssh.SSHServerConnection | None = process.get_extra_info("connection")

        def cut() -> None:
            """Abort the TCP connection: no exit status, no channel close, nothing more."""
            closed.set()
            if conn is not None:
                conn.abort()

        def writer(stream: asyncssh.SSHWriter[str]) -> Callable[[str], None]:
            def write(text: str) -> None:
                if closed.is_set():
                    return
                try:
                    stream.write(text)
                except (BrokenPipeError, ConnectionError, asyncssh.Error):
                    closed.set()
                    return
                if dropping:
                    # The first output gets out onto the wire; then the link dies.
                    closed.set()
                    asyncio.get_running_loop().call_later(_FLUSH_BEFORE_CUT, cut)

            return write

        ctx = CommandContext(
            world=self.world,
            node_index=self.index,
            out=writer(process.stdout),
            err=writer(process.stderr),
            closed=closed,
            cwd=f"/home/{self.world.config.username}",
        )
        watcher = asyncio.ensure_future(process.wait_closed())
        watcher.add_done_callback(lambda _: closed.set())
        task = asyncio.ensure_future(run_command_line(ctx, command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            if dropping:
                # The command keeps running to its end, like a remote process outliving sshd.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), _SILENT_COMMAND_WAIT)
                if not closed.is_set():
                    cut()
                return
            exit_code = await asyncio.shield(task)
            if not closed.is_set():
                process.exit(exit_code)
        finally:
            watcher.cancel()
