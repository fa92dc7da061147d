"""Operations commands on the simulated nodes: `hf download`, `hf cache rm`, `df`, git, builds."""

from __future__ import annotations

import re

import pytest

from tests.sim import SimCluster, SimConfig
from tests.sim.tests.conftest import SshConnect

REPO = "~/spark-vllm-docker"
GB = 1_000_000_000


@pytest.fixture
def sim_config(client_key_pair: tuple[str, str]) -> SimConfig:
    return SimConfig(
        authorized_keys=[client_key_pair[1]],
        model_bytes={"org/small": 12 * GB},
        disk_free_bytes=100 * GB,
        download_seconds=0.2,
    )


def _redraws(stderr: str) -> list[str]:
    """Each bar redraw (or message), without a positioned bar's cursor-up and padding."""
    parts = stderr.replace("\n", "\r").split("\r")
    return [text for part in parts if (text := part.removesuffix("\x1b[A").rstrip())]


async def test_download_prints_hub_progress_and_fills_the_disk(
    sim: SimCluster, ssh: SshConnect
) -> None:
    conn = await ssh(0)
    dry = await conn.run("hf download org/small --dry-run")
    assert dry.exit_status == 0
    assert dry.stdout.startswith("[dry-run] Will download 10 files (out of 10) totalling 12.0G.\n")
    assert "model-00001-of-00003.safetensors" in dry.stdout

    # Over SSH stderr is no terminal: the real CLI then draws only its files bar.
    plain = await conn.run("hf download org/small")
    assert plain.exit_status == 0
    assert plain.stderr.startswith("\rFetching 10 files:   0%|          | 0/10 [00:00<?, ?it/s]")
    assert plain.stderr.endswith(
        "\rFetching 10 files: 100%|██████████| 10/10 [01:25<00:00,  0.12it/s]\n"
    )
    assert all(line.startswith("Fetching 10 files: ") for line in _redraws(plain.stderr))
    assert "/.cache/huggingface/hub/models--org--small/snapshots/" in plain.stdout
    assert sim.world.storage[0].free == 88 * GB
    assert sim.world.storage[1].free == 100 * GB  # another node's disk is its own

    # TQDM_POSITION=-1 draws the bytes bar too, each redraw framed by a newline and a cursor-up.
    node1 = await ssh(1)
    result = await node1.run("env TQDM_POSITION=-1 hf download org/small")
    assert result.exit_status == 0
    assert result.stderr.startswith(
        "\n\rDownloading (incomplete total...): 0.00B [00:00, ?B/s]\x1b[A"
        "\n\rFetching 10 files:   0%|          | 0/10 [00:00<?, ?it/s]\x1b[A"
        "\n\rDownloading (incomplete total...):   0%|          | 0.00/1.57k [00:00<?, ?B/s]\x1b[A"
    )
    redraws = _redraws(result.stderr)
    byte_bars = [line for line in redraws if line.startswith("Downloading (incomplete total...): ")]
    assert len(byte_bars) >= 20
    # The total grows as the eight workers start files, and again as each frees a worker.
    totals = [match[1] for line in byte_bars if (match := re.search(r"/(\S+) \[", line))]
    assert totals[:3] == ["1.57k", "10.4k", "12.0k"]
    assert totals[-1] == "12.0G"
    assert len(set(totals)) > 8
    assert any(line.endswith(", 140MB/s]") for line in byte_bars)
    assert "\rFetching 10 files: 100%|██████████| 10/10 [01:25<00:00,  0.12it/s]\n" in result.stderr
    assert redraws[-1] == "Download complete: 100%|██████████| 12.0G/12.0G [01:25<00:00, 140MB/s]"
    assert "/.cache/huggingface/hub/models--org--small/snapshots/" in result.stdout
    assert sim.world.storage[1].free == 88 * GB
    unknown = await node1.run("env TQDM_POSITION=-1 hff download org/small")
    assert (unknown.exit_status, unknown.stderr) == (127, "env: 'hff': No such file or directory\n")

    df = await conn.run("df --output=size,avail -B1 ~")
    assert df.exit_status == 0
    header, values = df.stdout.splitlines()
    assert header.split() == ["1B-blocks", "Avail"]
    assert [int(v) for v in values.split()] == [sim.config.disk_bytes, 88 * GB]

    again = await conn.run("hf download org/small --dry-run")
    assert "Will download 0 files (out of 10) totalling 0.0." in again.stdout

    removed = await conn.run("hf cache rm model/org/small --yes")
    assert (removed.exit_status, removed.stdout) == (
        0,
        "✓ Deleted 1 repo(s) and 1 revision(s); freed 12.0G.\n",
    )
    assert sim.world.storage[0].free == 100 * GB
    gone = await conn.run("hf cache rm model/org/small --yes")
    assert gone.exit_status == 1
    assert "Could not find 'model/org/small'" in gone.stderr


async def test_out_of_disk_leaves_a_partial_that_resumes(sim: SimCluster, ssh: SshConnect) -> None:
    sim.world.storage[0].free = 5 * GB
    conn = await ssh(0)
    result = await conn.run("hf download org/small")
    assert result.exit_status == 1
    assert "OSError: [Errno 28] No space left on device" in result.stderr
    assert sim.world.storage[0].free == 0
    assert sim.world.storage[0].hf_cache["org/small"].stored == 5 * GB

    sim.world.storage[0].free = 50 * GB  # the user made room
    resumed = await conn.run("env TQDM_POSITION=-1 hf download org/small")
    assert resumed.exit_status == 0
    # Complete files count in neither the bytes nor the total; the partial one's bytes do.
    bars = [line for line in _redraws(resumed.stderr) if "B/s]" in line and "%|" in line]
    assert [re.search(r"\| (\S+/\S+) \[", line)[1] for line in bars[:2]] == [  # type: ignore[index]
        "992M/4.00G",  # the partial shard, 1 GB short of 5 GB stored before
        "992M/7.99G",  # and the last shard
    ]
    assert sim.world.storage[0].free == 43 * GB


async def test_network_failure_and_bad_arguments(sim: SimCluster, ssh: SshConnect) -> None:
    conn = await ssh(1)
    sim.faults.fail_downloads_at(0.5)
    failed = await conn.run("hf download org/small")
    assert failed.exit_status == 1
    assert "httpx.RemoteProtocolError" in failed.stderr
    assert sim.world.storage[1].hf_cache["org/small"].stored >= 6 * GB
    missing = await conn.run("hf download nonexistent-org/missing-model")
    assert missing.exit_status == 1
    assert missing.stderr.startswith("Repository Not Found for url: ")
    extra = await conn.run("hf download org/small --local-dir /tmp")
    assert extra.exit_status == 2
    assert (await conn.run("df -h")).exit_status == 1
    assert (await conn.run("df --output=avail -B1 /etc")).stderr.startswith("df: /etc: No such")


async def test_git_reports_commits_between_head_and_upstream(
    sim: SimCluster, ssh: SshConnect
) -> None:
    conn = await ssh(0)
    sim.repo.behind = 3
    parsed = await conn.run(
        f"cd {REPO} && git fetch --quiet && git rev-parse HEAD '@{{u}}' && "
        "git rev-list --count 'HEAD..@{u}' && git log --max-count=2 '--format=%h %s' 'HEAD..@{u}'"
    )
    assert parsed.exit_status == 0
    head, upstream, count, *subjects = parsed.stdout.splitlines()
    assert (head, upstream) == (sim.repo.head, sim.repo.upstream)
    assert len(head) == 40
    assert head != upstream
    assert count == "3"
    assert len(subjects) == 2
    assert subjects[0].startswith(upstream[:7] + " ")

    sim.repo.dirty = True
    refused = await conn.run(f"cd {REPO} && git pull --ff-only")
    assert refused.exit_status == 1
    assert "would be overwritten by merge" in refused.stderr
    sim.repo.dirty = False
    sim.repo.fetch_fails = True
    offline = await conn.run(f"cd {REPO} && git fetch --quiet")
    assert offline.exit_status == 128
    assert "Could not resolve host" in offline.stderr
    sim.repo.fetch_fails = False
    pulled = await conn.run(f"cd {REPO} && git pull --ff-only")
    assert pulled.stdout.startswith(f"Updating {head[:7]}..{upstream[:7]}\nFast-forward\n")
    assert sim.repo.head == upstream
    bad_log = await conn.run(f"cd {REPO} && git log --all")
    assert bad_log.exit_status == 128
