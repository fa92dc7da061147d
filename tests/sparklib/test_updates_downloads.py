"""Repo updates and model downloads: update checks, builds, byte progress, disk, failures."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from custom_components.spark_control.sparklib.cluster import ClusterClient
from custom_components.spark_control.sparklib.downloads import (
    DiskSpace,
    DownloadCancelled,
    DownloadFailed,
    DownloadProgress,
    DryRun,
    InsufficientDisk,
    NodeDownload,
    parse_df,
    parse_download_progress,
    parse_dry_run,
)
from custom_components.spark_control.sparklib.errors import CommandFailed, InvalidInput, SparkError
from custom_components.spark_control.sparklib.progress import parse_progress
from custom_components.spark_control.sparklib.updates import parse_update_check
from tests.sim import SimCluster

GB = 1_000_000_000
HF_OUTPUT = Path(__file__).parent / "hf_output"  # captured from huggingface_hub (capture.py)
SNAPSHOT = "/home/spark/.cache/huggingface/hub/models--org--small/snapshots/" + "8ab5b2a3" * 5


async def test_check_and_apply_update(sim: SimCluster, client: ClusterClient) -> None:
    sim.repo.behind = 3
    before = sim.repo.head
    update = await client.check_updates()
    assert (update.installed, update.latest, update.behind) == (before, sim.repo.upstream, 3)
    assert len(update.commits) == 3
    assert update.commits[0].short == sim.repo.upstream[:7]
    assert update.release_notes.splitlines()[0] == (
        f"- `{update.commits[0].short}` {update.commits[0].subject}"
    )
    lines = [line async for line in client.apply_update()]
    assert lines[-1] == "Done."
    after = await client.check_updates()
    assert (after.installed, after.behind, after.commits) == (update.latest, 0, ())
    assert sim.nodes[0].commands[-2] == (
        "cd ~/spark-vllm-docker && git pull --ff-only && ./build-and-copy.sh -c"
    )


async def test_update_check_failures(sim: SimCluster, client: ClusterClient) -> None:
    sim.repo.fetch_fails = True
    with pytest.raises(CommandFailed) as err:
        await client.check_updates()
    assert "Could not resolve host" in err.value.stderr
    with pytest.raises(SparkError):
        parse_update_check("not\na\ncheck\n")


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


async def test_download_to_every_node_reports_aggregated_progress(
    sim: SimCluster, client: ClusterClient
) -> None:
    sim.config.model_bytes["org/small"] = 12 * GB
    download = client.model_download("org/small", all_nodes=True)
    spaces = await download.check_space()
    assert set(spaces) == set(client.nodes)
    assert [part.needed for part in download.parts] == [12 * GB, 12 * GB]
    readings: list[DownloadProgress] = []
    snapshots = await download.run(readings.append)
    assert set(snapshots) == set(client.nodes)
    assert all("models--org--small/snapshots/" in path for path in snapshots.values())
    assert readings[-1].percent == 100
    assert readings[-1].total == 24 * GB
    assert readings[-1].done == 24 * GB
    assert [r.done for r in readings] == sorted(r.done for r in readings)
    # The hub's bar starts with an incomplete total (the files its workers began); the
    # dry run's size holds the total, so the percentage only grows.
    assert {r.total for r in readings} == {24 * GB}
    assert [r.percent for r in readings] == sorted(r.percent for r in readings)
    assert any(r.rate and r.rate >= 140e6 and r.eta for r in readings)
    after = await client.disk_space()
    assert [space.free for space in after.values()] == [sim.config.disk_free_bytes - 12 * GB] * 2


async def test_download_whose_size_the_hub_does_not_fully_know(
    sim: SimCluster, client: ClusterClient
) -> None:
    """The dry run says "an unknown size": the check counts the sizes it gives (a floor, still
    enough to refuse a disk too small for them), and the download runs to its real total."""
    sim.config.model_bytes["org/small"] = 12 * GB
    sim.faults.hide_a_file_size()
    download = client.model_download("org/small", all_nodes=False)
    await download.check_space()
    (part,) = download.parts
    assert (part.files, part.size_known) == (10, False)
    assert 0 < part.needed < 12 * GB
    assert not download.complete
    readings: list[DownloadProgress] = []
    await download.run(readings.append)
    assert (readings[-1].percent, readings[-1].done, readings[-1].total) == (100, 12 * GB, 12 * GB)

    sim.config.model_bytes["org/big"] = 400 * GB
    sim.world.storage[0].free = 100 * GB
    with pytest.raises(InsufficientDisk):
        await client.model_download("org/big", all_nodes=False).check_space()


async def test_download_refused_without_space_and_cleanup(
    sim: SimCluster, client: ClusterClient
) -> None:
    sim.config.model_bytes["org/big"] = 400 * GB
    sim.world.storage[1].free = 100 * GB
    download = client.model_download("org/big", all_nodes=True)
    with pytest.raises(InsufficientDisk) as err:
        await download.check_space()
    assert err.value.host == list(client.nodes)[1]
    assert "100.0 GB free" in str(err.value)

    sim.faults.fail_downloads_at(0.25)
    head_only = client.model_download("org/big", all_nodes=False)
    with pytest.raises(DownloadFailed) as failed:
        await head_only.run()
    assert failed.value.reason.startswith("httpx.RemoteProtocolError: peer closed connection")
    assert failed.value.host == next(iter(client.nodes))
    assert sim.world.storage[0].hf_cache["org/big"].stored >= 100 * GB
    await head_only.cleanup()
    assert "org/big" not in sim.world.storage[0].hf_cache
    assert sim.world.storage[0].free == sim.config.disk_free_bytes
    await head_only.cleanup()  # nothing left: still fine


async def test_download_cancel_keeps_partial_for_resume(
    sim: SimCluster, client: ClusterClient
) -> None:
    # Long enough (10 % shows about 4 s in, the end 10 s) that the cancel lands mid-download
    # on a loaded machine; it was 2 s, about 1 s after the 10 % line.
    sim.config.download_seconds = 10.0
    download = client.model_download("org/slow", all_nodes=False)
    started = asyncio.Event()

    def seen(progress: DownloadProgress) -> None:
        if progress.percent >= 10:
            started.set()

    task = asyncio.create_task(download.run(seen))
    await asyncio.wait_for(started.wait(), 30)
    download.cancel()
    with pytest.raises(DownloadCancelled):
        await task
    partial = sim.world.storage[0].hf_cache["org/slow"]
    assert not partial.complete
    sim.config.download_seconds = 0.1
    resumed = client.model_download("org/slow", all_nodes=False)
    await resumed.run()
    assert sim.world.storage[0].hf_cache["org/slow"].complete


async def test_download_errors(client: ClusterClient) -> None:
    with pytest.raises(DownloadFailed) as err:
        await client.model_download("nonexistent-org/missing-model", all_nodes=False).run()
    assert err.value.reason.startswith("Please make sure you specified the correct `repo_id`")
    with pytest.raises(InvalidInput):
        client.model_download("x; reboot", all_nodes=False)


@pytest.mark.parametrize(
    ("line", "reading"),
    [
        (  # huggingface_hub 1.x, behind the cursor-up of a positioned bar
            "\x1b[ADownloading (incomplete total...):  12%|█▏        | 2.67G/21.3G "
            "[00:19<02:13, 140MB/s]",
            DownloadProgress(
                percent=12, done=2_670_000_000, total=21_300_000_000, rate=140e6, eta=133
            ),
        ),
        (  # 2.x: no ETA printed, so it comes from the rate
            "Reconstructing (incomplete total...):  25%|██▌       | 17.5MB / 70.0MB, 37.1MB/s  ",
            DownloadProgress(percent=25, done=17_500_000, total=70_000_000, rate=37.1e6, eta=1),
        ),
        (
            "Reconstructing (incomplete total...):   0%|          |  0.00B / 2.00kB",
            DownloadProgress(percent=0, done=0, total=2_000, rate=None, eta=None),
        ),
        ("Fetching 10 files:  20%|██        | 2/10 [00:01<00:04]", None),
        ("Downloading (incomplete total...): 0.00B [00:00, ?B/s]", None),  # no total yet
        ("Reconstructing (incomplete total...): |          |  0.00B /  0.00B", None),
        ("Downloading bytes: ██▍       | 10.0MB, 19.5MB/s  ", None),  # 2.x's network bytes
    ],
)
def test_parse_download_bars(line: str, reading: DownloadProgress | None) -> None:
    assert parse_download_progress(line) == reading


def test_parse_download_lines() -> None:
    slow = parse_download_progress("Downloading:   0%|          | 0.00/21.3G [00:00<?, ?B/s]")
    assert slow is not None
    assert (slow.rate, slow.eta) == (None, None)
    assert parse_dry_run("[dry-run] Will download 0 files (out of 10) totalling 0.0.") == DryRun(
        files=0, size=0
    )
    assert parse_df("     1B-blocks          Avail\n  4000  1000\n") == DiskSpace(4000, 1000)
    with pytest.raises(SparkError):
        parse_df("df: .: No such file or directory")


def test_parse_dry_run_captures() -> None:
    """huggingface_hub 2.4's own dry run (capture_dry_run.py): a total, or "an unknown size"
    when one file's size is not given, then the sizes it knows are the floor."""
    known = parse_dry_run((HF_OUTPUT / "hub-2.4-dry-run-known-size.txt").read_text())
    assert known == DryRun(files=4, size=round(7.8e9))
    unknown = parse_dry_run((HF_OUTPUT / "hub-2.4-dry-run-unknown-size.txt").read_text())
    assert unknown == DryRun(files=4, size=1_600 + 4 * 10**9 + 11_400_000, size_known=False)


def _read_capture(name: str) -> tuple[NodeDownload, list[DownloadProgress]]:
    """A node's download part fed a captured `hf download` output, line by line as
    `SshNode.stream_lines` splits it (at every carriage return and newline)."""
    part = NodeDownload(node=None)  # type: ignore[arg-type]  # reading needs no connection
    lines = re.split(r"\r|\n", (HF_OUTPUT / name).read_text(newline=""))
    readings = [reading for line in lines if (reading := part.read(line)) is not None]
    return part, readings


@pytest.mark.parametrize("capture", ["hub-1.22-tqdm-position.txt", "hub-2.4-tqdm-position.txt"])
def test_real_hub_output_reads_as_byte_progress(capture: str) -> None:
    """huggingface_hub's own bars (1.x: "Downloading (incomplete total...)", 2.x:
    "Reconstructing (incomplete total...)", both drawn with TQDM_POSITION=-1) give growing
    byte readings up to the whole repo, the snapshot path from the last line (bare in 1.x,
    "path: ..." in 2.x), and no message lines: the bars' cursor moves are not messages."""
    part, readings = _read_capture(capture)
    assert len(readings) >= 5
    done = [reading.done for reading in readings]
    assert done == sorted(done)
    last = readings[-1]
    assert (last.percent, last.done, last.total) == (100, 130_000_000, 130_000_000)
    assert last.rate is not None
    assert last.rate > 1e6
    assert part.snapshot == SNAPSHOT
    assert not part.last_lines


def test_without_a_terminal_the_hub_draws_no_byte_bar() -> None:
    """Without TQDM_POSITION=-1 (and no terminal, as over SSH) only the files bar is drawn:
    no progress to read, which is why the download command sets it."""
    part, readings = _read_capture("hub-1.22-no-terminal.txt")
    assert readings == []
    assert part.snapshot == SNAPSHOT
    assert not part.last_lines


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
