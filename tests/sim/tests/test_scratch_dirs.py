"""The simulator's node homes never outlive it: stopped, signalled, or killed outright."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.paths import REPO
from tests.sim import SimCluster, SimConfig
from tests.sim.scratch_dirs import PREFIX, remove_stale_homes

# A cluster run in-process, as the test suites run it, with no signal handling of its own.
IN_PROCESS = """
import asyncio
from tests.sim import SimCluster, SimConfig

async def main():
    async with SimCluster(SimConfig(nodes=2)):
        print("ready", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def homes_of(root: Path, pid: int) -> list[Path]:
    return sorted(root.glob(f"{PREFIX}*-{pid}-*"))


@contextlib.asynccontextmanager
async def simulator(root: Path, *argv: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A simulator process with its temp dir in `root`, killed if a test leaves it running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=REPO, env={**os.environ, "TMPDIR": str(root)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def read_until(process: asyncio.subprocess.Process, last_line: bytes) -> None:
    """Wait for the process to print `last_line` (its sign that the cluster serves)."""
    assert process.stdout is not None
    async with asyncio.timeout(60):
        while (line := await process.stdout.readline()) != last_line:
            assert line, "the simulator exited before it served"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_process_mode_removes_its_homes_when_stopped(tmp_path: Path, signum: int) -> None:
    """`python -m tests.sim` (the demo's) stops its cluster on SIGTERM or SIGINT, homes too."""
    async with simulator(tmp_path, "-m", "tests.sim", "--nodes", "2") as process:
        await read_until(process, b"}\n")  # the last line of the endpoints JSON
        assert len(homes_of(tmp_path, process.pid)) == 2
        process.send_signal(signum)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    assert homes_of(tmp_path, process.pid) == []


async def test_in_process_cluster_removes_its_homes_on_sigterm(tmp_path: Path) -> None:
    """A test process killed by SIGTERM (a CI timeout) removes its homes, then dies of it."""
    async with simulator(tmp_path, "-c", IN_PROCESS) as process:
        await read_until(process, b"ready\n")
        assert len(homes_of(tmp_path, process.pid)) == 2
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == -signal.SIGTERM
    assert homes_of(tmp_path, process.pid) == []


async def test_homes_of_dead_processes_go_when_a_simulator_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL leaves homes behind; the next simulator removes those of pids that are gone,
    and nothing of a process that still runs or of a name it did not write."""
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()  # reaped: its pid names no process now
    alive = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; sys.stdin.read()", stdin=asyncio.subprocess.PIPE
    )
    try:
        stale = tmp_path / f"{PREFIX}0-{dead.pid}-abcd1234"
        (stale / "models").mkdir(parents=True)
        (stale / "models" / "shipped.bin").write_bytes(b"x")
        running = tmp_path / f"{PREFIX}0-{alive.pid}-abcd1234"
        running.mkdir()
        unnamed = tmp_path / f"{PREFIX}0-abcd1234"  # no pid in the name: whose, unknown
        unnamed.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        async with SimCluster(SimConfig(nodes=1)) as sim:
            assert not stale.exists()
            assert running.is_dir()
            assert unnamed.is_dir()
            (own,) = sim.world.homes
            assert own.parent == tmp_path
            assert remove_stale_homes(tmp_path) == []  # its own home is in use
            assert own.is_dir()
        assert not own.exists()
    finally:
        assert alive.stdin is not None
        alive.stdin.close()
        await alive.wait()
