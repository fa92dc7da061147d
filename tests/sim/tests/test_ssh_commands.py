"""Every command family of docs/remote-commands.md over a real SSH connection."""

from __future__ import annotations

import asyncio
import json
import shlex

import aiohttp
import pytest

from tests.sim import SimCluster
from tests.sim.tests.conftest import SshConnect

REPO = "~/spark-vllm-docker"


async def test_uname_probe(ssh: SshConnect) -> None:
    conn = await ssh(0)
    result = await conn.run("uname -srm")
    assert result.exit_status == 0
    assert result.stdout == "Linux 6.11.0-1016-nvidia aarch64\n"


async def test_unknown_command_exits_127(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    result = await conn.run("rm -rf /tmp/x")
    assert result.exit_status == 127
    assert result.stderr == "sh: 1: rm: not found\n"
    assert sim.nodes[0].commands == ["rm -rf /tmp/x"]


async def test_docker_ps_lists_containers_per_node(ssh: SshConnect) -> None:
    head = await ssh(0)
    speech = await ssh(1)
    head_rows = [
        json.loads(line)
        for line in (await head.run("docker ps -a --format '{{json .}}'")).stdout.splitlines()
    ]
    speech_rows = [
        json.loads(line)
        for line in (await speech.run("docker ps -a --format '{{json .}}'")).stdout.splitlines()
    ]
    assert [row["Names"] for row in head_rows] == ["vllm_node"]
    assert sorted(row["Names"] for row in speech_rows) == ["magpie-tts", "parakeet-asr"]
    for row in head_rows + speech_rows:
        assert row["State"] == "running"
        assert row["Status"].startswith("Up ")
        assert {"ID", "Image", "CreatedAt", "Ports"} <= row.keys()


async def test_docker_inspect_and_missing_container(ssh: SshConnect) -> None:
    conn = await ssh(1)
    found = await conn.run("docker inspect parakeet-asr")
    assert found.exit_status == 0
    (info,) = json.loads(found.stdout)
    assert info["Name"] == "/parakeet-asr"
    assert info["State"]["Running"] is True
    assert info["State"]["Status"] == "running"
    assert info["RestartCount"] == 0
    assert info["Config"]["Image"] == "parakeet-asr:latest"

    missing = await conn.run("docker inspect nope")
    assert missing.exit_status == 1
    assert missing.stdout.strip() == "[]"
    assert missing.stderr == "Error: No such object: nope\n"


async def test_built_image_labels_reach_inspect(sim: SimCluster, ssh: SshConnect) -> None:
    """A context shipped over SFTP, built with a label, run: `docker inspect` shows the label
    on the container (what the speech container's update entity reads) and, for an image name,
    the image; `docker image inspect` answers for images only."""
    conn = await ssh(1)
    async with conn.start_sftp_client() as sftp:
        await sftp.makedirs("ctx", exist_ok=True)
        async with sftp.open("ctx/Dockerfile", "w") as dockerfile:
            await dockerfile.write("FROM python:3.11-slim\nRUN pip install aiohttp\n")
    built = await conn.run("docker build -t spark/speech:v2 --label org.example.version=v2 ctx")
    assert built.exit_status == 0, built.stderr
    await conn.run("docker rm -f parakeet-asr", check=True)
    ran = await conn.run(
        "docker run -d --name parakeet-asr --memory 40g --memory-swap 40g spark/speech:v2"
    )
    assert ran.exit_status == 0, ran.stderr

    (container,) = json.loads((await conn.run("docker inspect parakeet-asr")).stdout)
    assert container["Config"]["Image"] == "spark/speech:v2"
    assert container["Config"]["Labels"] == {"org.example.version": "v2"}
    (image,) = json.loads((await conn.run("docker inspect spark/speech:v2")).stdout)
    assert image["RepoTags"] == ["spark/speech:v2"]
    assert image["Config"]["Labels"] == {"org.example.version": "v2"}
    assert container["Image"] == image["Id"]
    assert image["Id"].startswith("sha256:")
    (by_id,) = json.loads((await conn.run(f"docker image inspect {image['Id']}")).stdout)
    assert by_id == image

    not_an_image = await conn.run("docker image inspect parakeet-asr")
    assert not_an_image.exit_status == 1
    assert not_an_image.stdout.strip() == "[]"
    assert not_an_image.stderr == (
        "Error response from daemon: No such image: parakeet-asr:latest\n"
    )
    assert (await conn.run("docker image prune -f")).exit_status == 1
    assert (await conn.run("podman image inspect spark/speech:v2")).exit_status == 127
    # Built on node 1 only: the head has no such image.
    head = await ssh(0)
    assert (await head.run("docker image inspect spark/speech:v2")).exit_status == 1


async def test_docker_stop_removes_the_vllm_container(sim: SimCluster, ssh: SshConnect) -> None:
    """launch-cluster.sh runs `vllm_node` with `--rm`: a stop closes vLLM's port and removes
    the container, so `docker start` finds nothing to start."""
    conn = await ssh(0)
    stopped = await conn.run("docker stop vllm_node")
    assert (stopped.exit_status, stopped.stdout) == (0, "vllm_node\n")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(f"{sim.vllm.url}/health")
    inspected = await conn.run("docker inspect vllm_node")
    assert (inspected.exit_status, inspected.stderr) == (1, "Error: No such object: vllm_node\n")
    ps = await conn.run("docker ps -a --format '{{json .}}'")
    assert "vllm_node" not in ps.stdout
    started = await conn.run("docker start vllm_node")
    assert started.exit_status == 1
    assert started.stderr == "Error response from daemon: No such container: vllm_node\n"


async def test_parakeet_stop_and_start(
    sim: SimCluster, ssh: SshConnect, http: aiohttp.ClientSession
) -> None:
    """A container not run with `--rm` stays after a stop, and a start brings its service back."""
    conn = await ssh(1)
    assert (await conn.run("docker stop parakeet-asr")).exit_status == 0
    (info,) = json.loads((await conn.run("docker inspect parakeet-asr")).stdout)
    assert (info["State"]["Status"], info["State"]["ExitCode"]) == ("exited", 0)
    assert info["HostConfig"]["AutoRemove"] is False
    listing = (await conn.run("docker ps -a --format '{{json .}}'")).stdout.splitlines()
    rows = {row["Names"]: row for row in map(json.loads, listing)}
    assert rows["parakeet-asr"]["Status"].startswith("Exited (0) ")
    assert (await conn.run("docker start parakeet-asr")).exit_status == 0
    await sim.parakeet.wait_serving()
    async with http.get(f"{sim.parakeet.url}/health") as response:
        assert response.status == 200


async def test_docker_lifecycle_unknown_container(ssh: SshConnect) -> None:
    conn = await ssh(0)
    for verb in ("start", "stop", "restart"):
        result = await conn.run(f"docker {verb} ghost")
        assert result.exit_status == 1
        assert result.stderr == "Error response from daemon: No such container: ghost\n"
    wrong_node = await conn.run("docker restart parakeet-asr")  # lives on node 1
    assert wrong_node.exit_status == 1


async def test_docker_logs_tail_since_and_unknown(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    container = sim.containers["vllm_node"]
    for index in range(5):
        container.log(f"line {index}")
    tail = await conn.run("docker logs --tail 2 vllm_node")
    assert tail.stdout == "line 3\nline 4\n"
    recent = await conn.run("docker logs --since 1m vllm_node")
    assert recent.stdout.splitlines()[-5:] == [f"line {index}" for index in range(5)]
    future = await conn.run("docker logs --since 2999-01-01T00:00:00Z vllm_node")
    assert (future.exit_status, future.stdout) == (0, "")
    bad_since = await conn.run("docker logs --since yesterday vllm_node")
    assert bad_since.exit_status == 125
    unknown = await conn.run("docker logs ghost")
    assert unknown.exit_status == 1
    assert "No such container: ghost" in unknown.stderr


async def test_docker_logs_follow_streams_until_container_stops(
    sim: SimCluster, ssh: SshConnect
) -> None:
    conn = await ssh(0)
    container = sim.containers["vllm_node"]
    process = await conn.create_process("docker logs -f --tail 0 vllm_node")
    # `--tail 0` shows only lines logged after the follow began: wait until it has.
    await container.wait_followers(lambda c: c.followers > 0)
    container.log("streamed one")
    assert await asyncio.wait_for(process.stdout.readline(), 30) == "streamed one\n"
    container.log("streamed two")
    assert await asyncio.wait_for(process.stdout.readline(), 30) == "streamed two\n"
    other = await ssh(0)
    await other.run("docker stop vllm_node")
    rest = await asyncio.wait_for(process.stdout.read(), 30)
    assert "Application shutdown complete." in rest
    completed = await asyncio.wait_for(process.wait(), 30)
    assert completed.exit_status == 0


async def test_docker_logs_follow_ends_when_client_closes(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    process = await conn.create_process("docker logs -f vllm_node")
    await asyncio.wait_for(process.stdout.readline(), 30)
    process.close()
    await process.wait_closed()
    container = sim.containers["vllm_node"]
    await container.wait_followers(lambda c: c.followers == 0)  # the server side unsubscribed


async def test_launch_cluster_status_stop_and_bad_option(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    status = await conn.run(f"cd {REPO} && ./launch-cluster.sh status")
    assert status.stdout == "vllm_node on spark-1: running\nvllm_node on spark-2: running\n"
    bad = await conn.run(
        f"cd {REPO} && "
        + shlex.join(["./launch-cluster.sh", "-d", "exec", "vllm", "serve", "a/b", "--evil", "1"])
    )
    assert bad.exit_status == 2
    assert bad.stderr.startswith("Error: unknown option '--evil'")
    stop = await conn.run(f"cd {REPO} && ./launch-cluster.sh stop")
    assert stop.exit_status == 0
    assert "Stopping vllm_node on spark-1..." in stop.stdout
    stopped = await conn.run(f"cd {REPO} && ./launch-cluster.sh status")
    assert (
        stopped.stdout == "vllm_node on spark-1: not running\nvllm_node on spark-2: not running\n"
    )
    outside = await conn.run("./launch-cluster.sh status")
    assert outside.exit_status == 127
    wrong_dir = await conn.run("cd /opt/elsewhere && ./launch-cluster.sh status")
    assert wrong_dir.exit_status == 2
    assert wrong_dir.stderr == "sh: 1: cd: can't cd to /opt/elsewhere\n"


async def test_git_update_check_and_apply_streams_build(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    sim.repo.behind = 3
    check = await conn.run(f"cd {REPO} && git fetch --quiet && git rev-list --count 'HEAD..@{{u}}'")
    assert (check.exit_status, check.stdout) == (0, "3\n")
    process = await conn.create_process(
        f"cd {REPO} && git pull --ff-only && ./build-and-copy.sh -c"
    )
    lines: list[str] = []
    async for line in process.stdout:
        if line:
            lines.append(line.rstrip("\n"))
    completed = await process.wait()
    assert completed.exit_status == 0
    assert lines[0].startswith("Updating ")
    assert lines[-1] == "Done."
    assert any(line.startswith("Copying vllm-node:latest to spark-2") for line in lines)
    recheck = await conn.run(f"cd {REPO} && git rev-list --count 'HEAD..@{{u}}'")
    assert recheck.stdout == "0\n"
    outside = await conn.run("git fetch --quiet")
    assert outside.exit_status == 128
    assert outside.stderr.startswith("fatal: not a git repository")


async def test_build_failure_exits_nonzero(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    sim.repo.build_fails = True
    result = await conn.run(f"cd {REPO} && ./build-and-copy.sh -c")
    assert result.exit_status == 1
    assert "ERROR: failed to solve" in result.stdout
    assert "Done." not in result.stdout


async def test_nvidia_smi_query(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(0)
    query = (
        "nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,"
        "temperature.gpu,power.draw,enforced.power.limit --format=csv,noheader,nounits"
    )
    result = await conn.run(query)
    assert result.exit_status == 0
    fields = result.stdout.strip().split(", ")
    assert fields[:2] == ["0", "NVIDIA GB10"]
    assert fields[3:5] == ["[N/A]", "[N/A]"]
    assert 0 <= int(fields[2]) <= 100
    float(fields[6])
    assert fields[7] == "[N/A]"  # a GB10 has no power cap to report
    sim.world.gpu_power_limits[0] = 240.0
    limited = await conn.run(query)
    assert limited.stdout.strip().split(", ")[7] == "240.00"
    bad = await conn.run("nvidia-smi --query-gpu=bogus --format=csv")
    assert bad.exit_status == 2


async def test_unterminated_quote_is_a_syntax_error(ssh: SshConnect) -> None:
    conn = await ssh(0)
    result = await conn.run("docker logs 'vllm_node")
    assert result.exit_status == 2
    assert "Syntax error" in result.stderr
