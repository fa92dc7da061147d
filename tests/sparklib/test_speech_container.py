"""The speech container's build context as shipped in the integration, and its deploy over SSH
(SFTP upload, docker build, docker run with the memory cap and no swap) against the simulator."""

from __future__ import annotations

import json

import pytest

from custom_components.spark_control.sparklib.cluster import ClusterClient
from custom_components.spark_control.sparklib.errors import (
    CommandFailed,
    InvalidInput,
    ServiceUnreachable,
)
from custom_components.spark_control.sparklib.speech_container import (
    CONTEXT_LABEL,
    SPEECH_CONTEXT_DIR,
    context_files,
    docker_run,
    load_build_context,
    parse_run_options,
)
from custom_components.spark_control.sparklib.ssh import SshNode
from tests.paths import REPO
from tests.sim import SimCluster

ROOT = REPO


def test_packaged_context_equals_parakeet_container() -> None:
    """HACS ships only the integration: its copy must be parakeet_container/ byte for byte
    (run scripts/sync_speech_container.py after changing the container)."""
    assert context_files(SPEECH_CONTEXT_DIR) == context_files(ROOT / "parakeet_container")
    shipped = {
        path.relative_to(SPEECH_CONTEXT_DIR).as_posix()
        for path in SPEECH_CONTEXT_DIR.rglob("*")
        if path.is_file()
    }
    assert shipped == {name for name, _ in context_files(SPEECH_CONTEXT_DIR)}


def test_run_options_have_one_home() -> None:
    context = load_build_context()
    options = list(context.run_options)
    memory = options[options.index("--memory") + 1]
    assert options[options.index("--memory-swap") + 1] == memory  # no swap
    assert "--gpus" in options
    # run.sh takes its options from the same file instead of repeating them.
    script = (ROOT / "parakeet_container/run.sh").read_text()
    assert "docker-run.args" in script
    assert "--memory" not in script
    argv = docker_run(context, "parakeet-asr").render().split()
    assert argv[:5] == ["docker", "run", "-d", "--name", "parakeet-asr"]
    assert argv[-1] == f"spark-control/parakeet:{context.digest}"


@pytest.mark.parametrize(
    "text",
    [
        "--memory 40g\n",  # swap not forbidden
        "--memory 40g\n--memory-swap 80g\n",
        "--memory 40g\n--memory-swap 40g\n--privileged true\n",
        "--memory 40g\n--memory-swap 40g\n-v /:/host\n",
        "--memory 40g\n--memory-swap 40g\n-e X=$(reboot)\n",
    ],
)
def test_bad_run_options_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_run_options(text)


async def _healthy(client: ClusterClient) -> bool:
    try:
        return await client.api.parakeet_healthy()
    except ServiceUnreachable:
        return False


async def test_deploy_builds_and_runs_the_shipped_context(
    sim: SimCluster, client: ClusterClient
) -> None:
    context = load_build_context()
    assert await client.speech_container_version() == ""  # running, not built by us
    lines = [line async for line in client.deploy_speech_container(context)]
    assert lines[0] == f"Uploading {len(context.files)} files to {context.remote_dir}"
    # BuildKit numbers the Dockerfile's steps; ARG defaults are resolved in FROM.
    assert any("[1/6] FROM python:3.11-slim-bookworm" in line for line in lines)
    assert any("[5/6] RUN pip install" in line for line in lines)
    shipped = sim.world.homes[1] / context.remote_dir
    assert (shipped / "Dockerfile").read_bytes() == dict(context.files)["Dockerfile"]
    assert (shipped / "parakeet_server/server.py").is_file()

    container = sim.containers["parakeet-asr"]
    assert container.image == context.image
    assert container.labels == {CONTEXT_LABEL: context.digest}
    inspect = await client.nodes["node1"].run(["docker", "inspect", "parakeet-asr"])
    host = json.loads(inspect.stdout)[0]["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 40 * 1024**3
    # `docker run` restarted the container: its port opens once the new process has booted.
    await sim.parakeet.wait_serving()
    assert await _healthy(client)
    assert await client.speech_container_version() == context.digest
    assert any(command.startswith("docker rm -f parakeet-asr") for command in sim.nodes[1].commands)

    await client.remove_speech_container()
    assert await client.speech_container_version() is None
    assert not await _healthy(client)
    await client.remove_speech_container()  # nothing left: still fine


async def test_failed_build_keeps_the_running_container(
    sim: SimCluster, client: ClusterClient
) -> None:
    sim.faults.fail_docker_builds()
    context = load_build_context()
    lines: list[str] = []

    async def deploy() -> None:
        async for line in client.deploy_speech_container(context):
            lines.append(line)

    with pytest.raises(CommandFailed) as err:
        await deploy()
    assert lines[0].startswith("Uploading ")
    assert "did not complete successfully" in err.value.stderr
    assert sim.containers["parakeet-asr"].running
    assert sim.containers["parakeet-asr"].image == "parakeet-asr:latest"
    assert not any(command.startswith("docker rm") for command in sim.nodes[1].commands)


async def test_upload_refuses_paths_outside_the_home(node: SshNode) -> None:
    for bad in ("../etc", "/etc", "a/../../b", "x y"):
        with pytest.raises(InvalidInput):
            await node.upload([("f", b"")], bad)
    with pytest.raises(InvalidInput):
        await node.upload([("../escape", b"")], "spark-control/x")
