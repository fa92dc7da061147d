"""Model downloads with `hf download`: size and disk checks first, then byte progress.

`ModelDownload` runs one download on one or more nodes (each node has its own Hugging Face
cache), reports aggregated progress, can be cancelled, and can clean up what a failed or
cancelled run left behind. A re-run resumes the partial files (the hub client does that).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .commands import disk_space, hf_cache_remove, hf_download
from .errors import CommandFailed, InvalidInput, SparkError
from .ssh import SshNode
from .validation import validate_repo_id

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SCALE = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_NUMBER = r"\d+(?:\.\d+)?"
# huggingface_hub 1.x's aggregated bytes bar (tqdm, unit="B", unit_scale=True), the same
# description from start to end, then "Download complete":
# "Downloading (incomplete total...):  12%|█▏        | 2.67G/21.3G [00:19<02:13, 140MB/s]"
_BYTES_BAR = re.compile(
    r"(?P<desc>Download(?:ing)?[^:|]*|Download complete):\s*(?P<percent>\d{1,3})%\|[^|]*\|\s*"
    rf"(?P<done>{_NUMBER})(?P<done_unit>[kKMGTP]?)/(?P<total>{_NUMBER})(?P<total_unit>[kKMGTP]?)"
    r"\s*\[(?P<elapsed>[\d:]+)<(?P<eta>[\d:]+|\?),\s*"
    rf"(?:(?P<rate>{_NUMBER})(?P<rate_unit>[kKMGTP]?)B/s|\?B/s)"
)
# huggingface_hub 1.24+ and 2.x: the bytes written to disk, with the summed rate and no ETA,
# then "Reconstruction complete":
# "Reconstructing (incomplete total...):  25%|██▌       | 17.5MB / 70.0MB, 37.1MB/s"
_RECONSTRUCT_BAR = re.compile(
    r"Reconstruct(?:ing|ion)[^:|]*:\s*(?P<percent>\d{1,3})%\|[^|]*\|\s*"
    rf"(?P<done>{_NUMBER})(?P<done_unit>[kKMGTP]?)B\s*/\s*(?P<total>{_NUMBER})(?P<total_unit>[kKMGTP]?)B"
    rf"(?:,\s*(?P<rate>{_NUMBER})(?P<rate_unit>[kKMGTP]?)B/s)?"
)
# Any tqdm redraw: "description: …|bar|…", or a bar whose total is unknown ("…: 0.00B [00:00, …").
_REDRAW = re.compile(r"^[^:|]+:.*\||^[^:|]+: \d+(?:\.\d+)?[kKMGTP]?B \[")
# The snapshot path `hf download` prints last: bare (1.x) or as "  path: ..." (2.x).
_SNAPSHOT = re.compile(r"(?P<path>/\S*/snapshots/[0-9a-f]{40})\s*$")
# huggingface_hub 2.x says "an unknown size" when a file's HEAD answer carries no size.
_DRY_RUN = re.compile(
    r"\[dry-run\] Will download (?P<files>\d+) files \(out of \d+\) totalling "
    r"(?:(?P<size>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)|(?P<unknown>an unknown size))"
)
# A row of the dry run's table that has a size ("-": not fetched, or its size unknown).
_DRY_RUN_ROW = re.compile(r"^\S+\s+(?P<size>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)\s*$", re.MULTILINE)
# What a dry run's one-decimal size may understate, plus room the node keeps for itself.
DISK_MARGIN_BYTES = 2 * 10**9


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """A node's home filesystem."""

    size: int
    free: int


@dataclass(frozen=True, slots=True)
class DryRun:
    """What `hf download --dry-run` says a node still has to fetch."""

    files: int
    size: int  # bytes; when not every size is known, the sum of those that are (a floor)
    size_known: bool = True


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """One redraw of the bytes bar; rate in bytes/s, eta in seconds (None when unknown)."""

    percent: int
    done: int
    total: int
    rate: float | None
    eta: int | None


class InsufficientDisk(SparkError):
    """A node has less free space than the download needs."""

    def __init__(self, host: str, needed: int, free: int) -> None:
        self.host = host
        self.needed = needed
        self.free = free
        super().__init__(
            f"{host} has {free / 1e9:.1f} GB free; the download needs {needed / 1e9:.1f} GB"
        )


class DownloadFailed(SparkError):
    """`hf download` exited non-zero on a node; `reason` is its last message line."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")


class DownloadCancelled(SparkError):
    """The download was cancelled; the partial files stay until resumed or cleaned up."""

    def __init__(self, repo_id: str) -> None:
        self.repo_id = repo_id
        super().__init__(f"Download of {repo_id} was cancelled")


def _scaled(number: str, unit: str | None) -> int:
    return round(float(number) * _SCALE[unit or ""])


def _seconds(text: str) -> int | None:
    if text == "?":
        return None
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def parse_download_progress(line: str) -> DownloadProgress | None:
    """The bytes-bar reading in an `hf download` output line; None for any other line
    (the "Fetching N files" counting bar, 2.x's network "Downloading bytes" bar, a bar whose
    total is not known yet)."""
    text = _ANSI.sub("", line)
    if (match := _BYTES_BAR.search(text) or _RECONSTRUCT_BAR.search(text)) is None:
        return None
    done = _scaled(match["done"], match["done_unit"])
    total = _scaled(match["total"], match["total_unit"])
    rate = float(_scaled(match["rate"], match["rate_unit"])) if match["rate"] else None
    if "eta" in match.groupdict():
        eta = _seconds(match["eta"])
    else:  # 2.x prints none: what the rate makes of the bytes left
        eta = round((total - done) / rate) if rate else None
    return DownloadProgress(
        percent=min(100, int(match["percent"])), done=done, total=total, rate=rate, eta=eta
    )


def parse_snapshot_path(line: str) -> str | None:
    """The snapshot path in an `hf download` output line, None in any other line."""
    match = _SNAPSHOT.search(_ANSI.sub("", line))
    return match["path"] if match else None


def parse_dry_run(output: str) -> DryRun:
    """What `hf download --dry-run` says it still has to fetch: files and bytes, or when the
    hub does not know every file's size, the bytes of the files its table sizes."""
    match = _DRY_RUN.search(output)
    if match is None:
        raise SparkError(f"unexpected `hf download --dry-run` output: {output[:200]!r}")
    files = int(match["files"])
    if match["unknown"] is None:
        return DryRun(files=files, size=_scaled(match["size"], match["unit"]))
    table = output[match.end() :]
    known = sum(_scaled(row["size"], row["unit"]) for row in _DRY_RUN_ROW.finditer(table))
    return DryRun(files=files, size=known, size_known=False)


def parse_df(output: str) -> DiskSpace:
    """`df --output=size,avail -B1 .` → DiskSpace."""
    lines = output.strip().splitlines()
    try:
        size, free = (int(value) for value in lines[-1].split())
    except (ValueError, IndexError) as err:
        raise SparkError(f"unexpected df output: {output[:200]!r}") from err
    return DiskSpace(size=size, free=free)


async def read_disk_space(node: SshNode) -> DiskSpace:
    """The node's free space (a cheap command: safe to poll)."""
    result = await node.run(disk_space(), timeout=30)
    return parse_df(result.stdout)


@dataclass
class NodeDownload:
    """One node's part of a download."""

    node: SshNode
    needed: int = 0  # bytes to fetch (the dry run's; a floor when not `size_known`)
    files: int = 0  # files to fetch
    size_known: bool = True
    progress: DownloadProgress | None = None
    snapshot: str | None = None
    last_lines: list[str] = field(default_factory=list)

    def read(self, line: str) -> DownloadProgress | None:
        """Take one output line of the node's `hf download`; the bytes bar's reading if the
        line is one."""
        # The path comes on stdout, so it can share a line with a bar redraw on stderr.
        if (path := parse_snapshot_path(line)) is not None:
            self.snapshot = path
        if (reading := parse_download_progress(line)) is not None:
            self.progress = reading
        # Not a redraw (nor a bar's bare cursor move): a message, the last of which says why
        # a failed download failed.
        elif path is None and (text := _ANSI.sub("", line).strip()) and not _REDRAW.match(text):
            self.last_lines = [*self.last_lines[-19:], text]
        return reading


type DownloadCallback = Callable[[DownloadProgress], None]


class ModelDownload:
    """Download `repo_id` on each of `nodes`; call `run()` once, `cancel()` from elsewhere."""

    def __init__(self, repo_id: str, nodes: Sequence[SshNode]) -> None:
        if not nodes:
            raise InvalidInput("target", "no node to download to")
        self.repo_id = validate_repo_id(repo_id)
        self.parts = [NodeDownload(node) for node in nodes]
        self._tasks: list[asyncio.Task[None]] = []
        self._cancelled = False

    @property
    def progress(self) -> DownloadProgress | None:
        """All nodes together: bytes summed, rates summed, the slowest node's ETA.

        Each node counts with at least the size its dry run announced: a node that has not
        printed its bar yet, so the total does not jump (and the percentage drop) when it
        starts; and a node whose bar still has an incomplete total (the hub adds each file's
        size only when a worker starts it), so the first small files do not read as 100 %.
        """
        if all(part.progress is None for part in self.parts):
            return None
        done = total = 0
        rates: list[float] = []
        etas: list[int] = []
        for part in self.parts:
            reading = part.progress
            node_done = reading.done if reading else 0
            node_total = max(reading.total if reading else 0, part.needed)
            done, total = done + node_done, total + node_total
            if reading and reading.rate:
                rates.append(reading.rate)
                etas.append(round((node_total - node_done) / reading.rate))
        return DownloadProgress(
            percent=int(100 * done / total) if total else 0,
            done=done,
            total=total,
            rate=sum(rates) if rates else None,
            eta=max(etas) if etas else None,
        )

    @property
    def complete(self) -> bool:
        """Whether the last check found every node holding all the files (nothing to fetch)."""
        return not any(part.files for part in self.parts)

    @property
    def size_known(self) -> bool:
        """Whether the last check knew the size of every file to fetch."""
        return all(part.size_known for part in self.parts)

    @property
    def snapshots(self) -> dict[str, str]:
        """Node name → snapshot path, for the nodes that finished."""
        return {p.node.name: p.snapshot for p in self.parts if p.snapshot is not None}

    async def check_space(self) -> dict[str, DiskSpace]:
        """Ask each node what is left to fetch and what is free; InsufficientDisk if short."""

        async def check(part: NodeDownload) -> DiskSpace:
            dry = parse_dry_run(
                (await part.node.run(hf_download(self.repo_id, dry_run=True), timeout=120)).stdout
            )
            part.needed, part.files, part.size_known = dry.size, dry.files, dry.size_known
            # An unknown size is checked as far as it is known: too little disk for that much
            # is too little for all of it.
            space = await read_disk_space(part.node)
            if part.needed and part.needed + DISK_MARGIN_BYTES > space.free:
                raise InsufficientDisk(part.node.name, part.needed + DISK_MARGIN_BYTES, space.free)
            return space

        spaces = await asyncio.gather(*(check(part) for part in self.parts))
        return {part.node.name: space for part, space in zip(self.parts, spaces, strict=True)}

    async def run(self, on_progress: DownloadCallback | None = None) -> dict[str, str]:
        """Download on every node at once; returns the snapshot paths.

        The first failure stops the other nodes too (their partial files stay, like the
        failed one's, for `cleanup()` or a resume) and is raised; `cancel()` raises
        DownloadCancelled.
        """

        async def one(part: NodeDownload) -> None:
            stream = part.node.stream_lines(hf_download(self.repo_id), check=True)
            try:
                async with contextlib.aclosing(stream):
                    async for line in stream:
                        reading = part.read(line)
                        if reading and on_progress and (total := self.progress) is not None:
                            on_progress(total)
            except CommandFailed as err:
                reason = part.last_lines[-1] if part.last_lines else str(err)
                raise DownloadFailed(part.node.name, reason) from err

        self._tasks = [asyncio.ensure_future(one(part)) for part in self.parts]
        try:
            await asyncio.gather(*self._tasks)
        except asyncio.CancelledError:
            if self._cancelled:
                raise DownloadCancelled(self.repo_id) from None
            raise
        except BaseException:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._cancelled:
                raise DownloadCancelled(self.repo_id) from None
            raise
        return self.snapshots

    def cancel(self) -> None:
        """Stop every node's download (closing the channels ends the remote `hf`)."""
        self._cancelled = True
        for task in self._tasks:
            task.cancel()

    async def cleanup(self) -> None:
        """Remove the repo from each node's cache (what a failed run left); a node where
        nothing was stored is fine."""

        async def remove(part: NodeDownload) -> None:
            try:
                await part.node.run(hf_cache_remove(self.repo_id), timeout=120)
            except CommandFailed as err:
                if "Could not find" not in err.stderr:
                    raise

        await asyncio.gather(*(remove(part) for part in self.parts))
