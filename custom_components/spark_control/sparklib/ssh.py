"""One kept SSH connection per node, with the host key pinned.

The connection is opened lazily, reused for every command, and reopened transparently
when it has dropped. The server must present exactly the pinned host key; anything else
raises HostKeyChanged carrying both fingerprints, so the user can decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

import asyncssh

from .commands import RemoteCommand
from .errors import (
    AuthRejected,
    CannotConnect,
    CommandFailed,
    CommandTimeout,
    HostKeyChanged,
    HostKeyNotPinned,
    InvalidInput,
)
from .keys import import_public_line, public_line
from .validation import validate_host, validate_port, validate_username

_LOGGER = logging.getLogger(__name__)

# Errors that mean "the transport is gone", as opposed to a refusal by the server.
_TRANSPORT_ERRORS = (OSError, asyncssh.ConnectionLost, asyncssh.DisconnectError, EOFError)
_LINE_ENDS = ("\n", "\r")
_UPLOAD_PATH = re.compile(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,255}$")
# OpenSSH allows 10 sessions per connection (MaxSessions); stay below it.
MAX_SESSIONS = 8


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished remote command produced."""

    stdout: str
    stderr: str
    exit_status: int


class _PinnedHostKeyClient(asyncssh.SSHClient):
    """Remembers the host key the server offered when it did not match the pin."""

    def __init__(self) -> None:
        self.offered_key: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered_key = key
        return False


class SshNode:
    """A GPU node reached over SSH as `username@host:port` with our private key."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        private_key: str,
        pinned_host_key: str | None,
        connect_timeout: float = 10,
        *,
        name: str | None = None,
    ) -> None:
        self.host = validate_host(host)
        # How errors name this node (e.g. HostKeyChanged.host): the caller's node key.
        self.name = name or self.host
        self.port = validate_port(port, "ssh_port")
        self.username = validate_username(username)
        try:
            self._client_key = asyncssh.import_private_key(private_key)
        except (asyncssh.KeyImportError, ValueError) as err:
            raise InvalidInput("private_key", "not a readable private key") from err
        self.connect_timeout = connect_timeout
        self._pinned: asyncssh.SSHKey | None = None
        if pinned_host_key is not None:
            self.pin(pinned_host_key)
        self._conn: asyncssh.SSHClientConnection | None = None
        self._connect_lock = asyncio.Lock()
        self._sessions = asyncio.Semaphore(MAX_SESSIONS)

    def __repr__(self) -> str:
        return f"SshNode({self.name}: {self.username}@{self.host}:{self.port})"

    @property
    def pinned_host_key(self) -> str | None:
        """The pinned host key as an OpenSSH line, or None before first use."""
        return public_line(self._pinned) if self._pinned is not None else None

    @property
    def pinned_fingerprint(self) -> str | None:
        """SHA256 fingerprint of the pinned host key."""
        return self._pinned.get_fingerprint("sha256") if self._pinned is not None else None

    @property
    def connected(self) -> bool:
        """Whether a connection is currently open."""
        return self._conn is not None and not self._conn.is_closed()

    def pin(self, openssh_public_line: str) -> None:
        """Trust exactly this host key from now on (drops a connection made with another)."""
        key = import_public_line(openssh_public_line)
        if self._pinned is not None and public_line(self._pinned) != public_line(key):
            self._drop()
        self._pinned = key

    async def fetch_host_key(self) -> str:
        """The server's current host key as an OpenSSH line (for pinning on first use)."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                key = await asyncssh.get_server_host_key(
                    self.host, self.port, server_host_key_algs="default", config=None
                )
        except (TimeoutError, *_TRANSPORT_ERRORS, asyncssh.Error) as err:
            raise CannotConnect(self.name, _describe(err)) from err
        if key is None:
            raise CannotConnect(self.name, "the server offered no host key")
        return public_line(key)

    async def run(
        self,
        argv: Sequence[str] | RemoteCommand,
        *,
        cwd: str | None = None,
        timeout: float = 30,  # noqa: ASYNC109  (the deadline is part of the API)
        check: bool = True,
    ) -> CommandResult:
        """Run a command to completion and return its output.

        `argv` is a plain argv list (joined with `shlex.join`, prefixed with `cd <cwd> &&`
        when `cwd` is given) or a prebuilt RemoteCommand. With `check`, a non-zero exit
        raises CommandFailed. A drop mid-command raises CannotConnect (never retried: the
        command may not be idempotent); a drop noticed before sending is healed by
        reconnecting once.
        """
        command = _render(argv, cwd)
        async with self._session(command) as process:
            try:
                async with asyncio.timeout(timeout):
                    completed = await process.wait(check=False)
            except TimeoutError:
                raise CommandTimeout(command, timeout) from None
            except _TRANSPORT_ERRORS as err:
                raise self._lost(command) from err
        if completed.exit_status is None:
            # No exit status means the channel or the connection closed under us.
            raise self._lost(command)
        result = CommandResult(
            stdout=_text(completed.stdout),
            stderr=_text(completed.stderr),
            exit_status=completed.exit_status,
        )
        if check and result.exit_status != 0:
            raise CommandFailed(command, result.exit_status, result.stderr)
        return result

    async def stream_lines(
        self,
        argv: Sequence[str] | RemoteCommand,
        *,
        cwd: str | None = None,
        check: bool = False,
    ) -> AsyncGenerator[str]:
        """Yield output lines (stdout and stderr merged, line ends stripped) as they arrive.

        A bare carriage return also ends a line: tqdm (`hf download`, vLLM's shard loading)
        redraws its bar with `\r`, so each redraw arrives as a line of its own.
        Ends when the remote command exits; closing the iterator (`aclose`, or leaving an
        `async for` early) closes the channel, which stops e.g. `docker logs -f`. A lost
        connection raises CannotConnect. With `check`, a non-zero exit raises CommandFailed
        (its `stderr` holds the last lines) once the output is exhausted.
        """
        command = _render(argv, cwd)
        tail: deque[str] = deque(maxlen=20)
        after_cr = False
        async with self._session(command, merge_stderr=True) as process:
            while True:
                try:
                    chunk = await process.stdout.readuntil(_LINE_ENDS)
                except asyncio.IncompleteReadError as eof:
                    chunk = str(eof.partial)  # output ended without a line end
                    if not chunk:
                        break
                except _TRANSPORT_ERRORS as err:
                    raise self._lost(command) from err
                if chunk == "\n" and after_cr:
                    after_cr = False  # the second half of a "\r\n"
                    continue
                after_cr = chunk.endswith("\r")
                line = chunk.rstrip("\r\n")
                tail.append(line)
                yield line
            try:
                completed = await process.wait(check=False)
            except _TRANSPORT_ERRORS as err:
                raise self._lost(command) from err
        if completed.exit_status is None:
            raise self._lost(command)
        if check and completed.exit_status != 0:
            raise CommandFailed(command, completed.exit_status, "\n".join(tail))

    async def upload(self, files: Sequence[tuple[str, bytes]], remote_dir: str) -> None:
        """Write files over SFTP into `remote_dir` (relative to the login directory, where an
        SFTP session starts), creating directories; `files` are (relative path, content).

        Paths are checked: plain relative paths of `[A-Za-z0-9._/-]` without `..`.
        """
        for path in (remote_dir, *(name for name, _ in files)):
            if not _UPLOAD_PATH.fullmatch(path) or ".." in path.split("/"):
                raise InvalidInput("path", f"not a plain relative path: {path!r}")
        conn = await self._connection()
        try:
            async with conn.start_sftp_client() as sftp:
                await sftp.makedirs(remote_dir, exist_ok=True)
                for name, content in files:
                    target = f"{remote_dir}/{name}"
                    parent = target.rsplit("/", 1)[0]
                    await sftp.makedirs(parent, exist_ok=True)
                    async with sftp.open(target, "wb") as handle:
                        await handle.write(content)
        except (asyncssh.SFTPError, asyncssh.ChannelOpenError) as err:
            raise CannotConnect(self.name, f"SFTP upload failed: {_describe(err)}") from err
        except _TRANSPORT_ERRORS as err:
            self._drop()
            raise CannotConnect(self.name, f"connection lost during an upload: {err}") from err

    async def wait_closed(self) -> None:
        """Wait until the kept connection, if any, has closed (the server hung up, or `close`)."""
        if (conn := self._conn) is not None:
            await conn.wait_closed()

    async def close(self) -> None:
        """Close the kept connection (it is reopened on the next command)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    @contextlib.asynccontextmanager
    async def _session(
        self, command: str, *, merge_stderr: bool = False
    ) -> AsyncIterator[asyncssh.SSHClientProcess[str]]:
        """A channel running `command`, closed on exit; at most MAX_SESSIONS at once."""
        async with self._sessions:
            process = await self._open_process(command, merge_stderr=merge_stderr)
            try:
                yield process
            finally:
                process.close()

    async def _open_process(
        self, command: str, *, merge_stderr: bool
    ) -> asyncssh.SSHClientProcess[str]:
        stderr = asyncssh.STDOUT if merge_stderr else asyncssh.PIPE
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                _LOGGER.debug("%s: %s", self.name, command)
                return await conn.create_process(
                    command, stdin=asyncssh.DEVNULL, stderr=stderr, encoding="utf-8"
                )
            except asyncssh.ChannelOpenError as err:
                if not conn.is_closed():
                    # The server refused this channel only; other sessions stay up.
                    raise CannotConnect(self.name, _describe(err)) from err
                self._drop()
                if attempt == 2:
                    raise CannotConnect(self.name, _describe(err)) from err
            except _TRANSPORT_ERRORS as err:
                # The kept connection died while idle; the command was never sent.
                self._drop()
                if attempt == 2:
                    raise CannotConnect(self.name, _describe(err)) from err
        raise AssertionError("unreachable")

    async def _connection(self) -> asyncssh.SSHClientConnection:
        async with self._connect_lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            self._conn = await self._connect()
            return self._conn

    async def _connect(self) -> asyncssh.SSHClientConnection:
        if self._pinned is None:
            raise HostKeyNotPinned(self.name)
        client = _PinnedHostKeyClient()
        try:
            async with asyncio.timeout(self.connect_timeout):
                conn, _ = await asyncssh.create_connection(
                    lambda: client,
                    self.host,
                    self.port,
                    username=self.username,
                    client_keys=[self._client_key],
                    known_hosts=([self._pinned], [], []),
                    # Offer every algorithm so a host key of another type still reaches the
                    # check above and is reported, instead of failing the key exchange.
                    server_host_key_algs="default",
                    preferred_auth="publickey",
                    agent_path=None,
                    config=None,
                    keepalive_interval=30,
                )
        except asyncssh.HostKeyNotVerifiable as err:
            expected = self.pinned_fingerprint or ""
            actual = (
                client.offered_key.get_fingerprint("sha256")
                if client.offered_key is not None
                else "unknown"
            )
            raise HostKeyChanged(self.name, expected, actual) from err
        except asyncssh.PermissionDenied as err:
            raise AuthRejected(self.name) from err
        except TimeoutError as err:
            raise CannotConnect(self.name, "timed out") from err
        except (*_TRANSPORT_ERRORS, asyncssh.Error) as err:
            raise CannotConnect(self.name, _describe(err)) from err
        return conn

    def _lost(self, command: str) -> CannotConnect:
        # The next command reconnects if the connection is gone (`_connection` checks);
        # a channel lost on a live connection leaves the other sessions alone.
        return CannotConnect(self.name, f"connection lost during `{command}`")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()


def _render(argv: Sequence[str] | RemoteCommand, cwd: str | None) -> str:
    if isinstance(argv, RemoteCommand):
        if cwd is not None:
            raise ValueError("a RemoteCommand carries its own cwd")
        return argv.render()
    if isinstance(argv, str):
        raise TypeError("pass an argv list, not a command string")
    return RemoteCommand.of(argv, cwd).render()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__
