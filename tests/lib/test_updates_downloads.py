"""Repo updates and model downloads: streamed lines, tqdm progress, failures."""

from __future__ import annotations

import pytest

from custom_components.spark_control.sparklib.cluster import ClusterClient
from custom_components.spark_control.sparklib.errors import CommandFailed, InvalidInput
from custom_components.spark_control.sparklib.progress import parse_progress
from tests.sim import SimCluster


async def test_check_and_apply_update(sim: SimCluster, client: ClusterClient) -> None:
    sim.repo.behind = 3
    assert await client.check_updates() == 3
    lines = [line async for line in client.apply_update()]
    assert lines[-1] == "Done."
    assert await client.check_updates() == 0
    assert sim.nodes[0].commands[-2] == (
        "cd ~/spark-vllm-docker && git pull --ff-only && ./build-and-copy.sh -c"
    )


async def test_failed_build_raises_with_its_output(sim: SimCluster, client: ClusterClient) -> None:
    sim.repo.behind = 1
    sim.repo.build_fails = True
    lines: list[str] = []

    async def apply() -> None:
        async for line in client.apply_update():
            lines.append(line)

    with pytest.raises(CommandFailed) as err:
        await apply()
    assert err.value.exit_status == 1
    assert "ERROR: failed to solve" in err.value.stderr
    assert lines
    assert lines[-1] in err.value.stderr


async def test_download_reports_progress(sim: SimCluster, client: ClusterClient) -> None:
    lines = [line async for line in client.download_model("Qwen/Qwen2.5-72B-Instruct")]
    progress = [p for line in lines if (p := parse_progress(line)) is not None]
    # Each carriage-return redraw of the bar arrives as its own line.
    assert len(progress) > 5
    assert progress[0].percent == 0
    assert progress[-1].percent == 100
    assert (progress[-1].done, progress[-1].total) == (12, 12)
    assert progress[-1].rate == "2.1MB/s"
    assert [p.percent for p in progress] == sorted(p.percent for p in progress)
    assert "models--Qwen--Qwen2.5-72B-Instruct/snapshots/" in lines[-1]

    node1 = [line async for line in client.download_model("org/other", node="node1")]
    assert sim.nodes[1].commands == ["hf download org/other"]
    assert "snapshots" in node1[-1]


async def test_download_errors(client: ClusterClient) -> None:
    async def download(repo_id: str, node: str | None = None) -> list[str]:
        return [line async for line in client.download_model(repo_id, node)]

    with pytest.raises(CommandFailed) as err:
        await download("nonexistent-org/missing-model")
    assert "Repository Not Found" in err.value.stderr
    with pytest.raises(InvalidInput):
        await download("x; reboot")
    with pytest.raises(InvalidInput):
        await download("org/model", "node7")


def test_parse_progress_lines() -> None:
    line = "Fetching 12 files:  42%|████      | 5/12 [00:10<00:14, 2.1MB/s]"
    progress = parse_progress(line)
    assert progress is not None
    assert (progress.description, progress.percent, progress.done, progress.total) == (
        "Fetching 12 files",
        42,
        5.0,
        12.0,
    )
    assert (progress.elapsed, progress.eta) == ("00:10", "00:14")
    shards = parse_progress(
        "Loading safetensors checkpoint shards:  50% Completed | 4/8 [00:03<00:03,  1.2it/s]"
    )
    assert shards is not None
    assert shards.percent == 50
    assert parse_progress("INFO 11-21 09:10:11 Loading weights took 3.2 seconds") is None
