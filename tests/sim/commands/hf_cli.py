"""`hf download REPO [--dry-run]` and `hf cache rm model/REPO --yes` (huggingface_hub 1.x CLI).

Progress is what the real CLI writes to a pipe (tests/sparklib/hf_output holds captures):
tqdm redraws starting with `\r`, each padded over the bar's longer previous one. Without a
terminal only the "Fetching N files" counting bar is drawn: the aggregated bytes bar hides
itself unless `TQDM_POSITION=-1` is set, which draws every bar framed by a newline and a
cursor-up (`\n\r...\x1b[A`). The bytes bar says "Downloading (incomplete total...)" from
start to end, its total growing as each of up to eight workers starts a file, and
"Download complete" at the end. The snapshot path goes to stdout. Bytes land in the node's
`NodeStorage`, so the disk fills, a download can run out of space, and a re-run resumes the
partial files (files already complete count in neither the bytes done nor the total).
"""

from __future__ import annotations

from tests.sim.commands.context import CommandContext
from tests.sim.commands.launch_cluster import REPO_ID
from tests.sim.node_storage import CachedRepo, RepoFile, repo_files, snapshot_revision
from tests.sim.tqdm_format import byte_bar, count_bar, hub_size

_STEPS = 20  # bytes-bar redraws over a whole download
_WORKERS = 8  # files the CLI fetches at once (its --max-workers default)
_BYTES_DESC = "Downloading (incomplete total...)"  # huggingface_hub 1.x never changes it


async def hf(ctx: CommandContext, argv: list[str]) -> int:
    args = argv[1:]
    if args[:1] == ["download"]:
        return await _download(ctx, args[1:])
    if args[:2] == ["cache", "rm"]:
        return _cache_rm(ctx, args[2:])
    ctx.err("Usage: hf [OPTIONS] COMMAND [ARGS]...\nError: No such command.\n")
    return 2


def _check_repo(ctx: CommandContext, repo_id: str) -> int:
    if not REPO_ID.match(repo_id):
        ctx.err(
            "huggingface_hub.errors.HFValidationError: Repo id must be in the form "
            f"'repo_name' or 'namespace/repo_name': '{repo_id}'.\n"
        )
        return 1
    if repo_id in ctx.world.config.missing_repos:
        ctx.err(
            f"Repository Not Found for url: https://huggingface.co/api/models/{repo_id}/revision/main.\n"
            "Please make sure you specified the correct `repo_id` and `repo_type`.\n"
        )
        return 1
    return 0


async def _download(ctx: CommandContext, args: list[str]) -> int:
    dry_run = "--dry-run" in args
    rest = [arg for arg in args if arg != "--dry-run"]
    if len(rest) != 1 or rest[0].startswith("-"):
        ctx.err(f"Error: Got unexpected extra arguments ({' '.join(rest[1:]) or 'none'})\n")
        return 2
    repo_id = rest[0]
    if code := _check_repo(ctx, repo_id):
        return code
    config = ctx.world.config
    storage = ctx.storage
    files = repo_files(config.model_bytes.get(repo_id, config.default_model_bytes))
    cached = storage.hf_cache.get(repo_id)
    if dry_run:
        return _dry_run(ctx, files, cached)
    if cached is None:
        cached = storage.hf_cache[repo_id] = CachedRepo(repo_id, files)
    return await _fetch(ctx, cached, _Bars(ctx, ctx.env.get("TQDM_POSITION") == "-1"))


class _Bars:
    """The CLI's tqdm bars on stderr, as they reach a pipe."""

    def __init__(self, ctx: CommandContext, positioned: bool) -> None:
        self._ctx = ctx
        self._positioned = positioned  # TQDM_POSITION=-1
        self._widths: dict[str, int] = {}  # tqdm pads a redraw over the bar's previous one

    def _padded(self, bar: str, text: str) -> str:
        padding = " " * max(0, self._widths.get(bar, 0) - len(text))
        self._widths[bar] = len(text)
        return text + padding

    def draw_files(self, text: str) -> None:
        self._draw("files", text)

    def draw_bytes(self, text: str) -> None:
        if self._positioned:  # else hidden: stderr is no terminal
            self._draw("bytes", text)

    def close_files(self, text: str) -> None:
        """The files bar's last redraw when its workers are done (it stays: a newline)."""
        self._ctx.err("\r" + self._padded("files", text) + "\n")

    def _draw(self, bar: str, text: str) -> None:
        line = self._padded(bar, text)
        self._ctx.err(f"\n\r{line}\x1b[A" if self._positioned else f"\r{line}")


async def _fetch(ctx: CommandContext, cached: CachedRepo, bars: _Bars) -> int:
    config = ctx.world.config
    rate = config.download_rate
    count = len(cached.files)
    todo = [file for file in cached.files if file.name not in cached.done]
    started: list[RepoFile] = []  # files a worker has begun: the bytes bar counts only these
    start = cached.stored
    chunk = max(1, (cached.total - start) // _STEPS)
    fail_at = ctx.world.faults.download_fails_at
    step_delay = config.download_seconds / _STEPS

    def draw_bytes(desc: str = _BYTES_DESC) -> None:
        total = sum(file.size for file in started)
        done = sum(
            file.size if file.name in cached.done else cached.partial.get(file.name, 0)
            for file in started
        )
        elapsed = (cached.stored - start) / rate
        bars.draw_bytes(byte_bar(desc, done, total, elapsed, rate if done else 0))

    def start_next() -> None:
        """A free worker takes the next file: its size joins the bytes bar's total."""
        running = [file for file in started if file.name not in cached.done]
        if len(started) < len(todo) and len(running) < _WORKERS:
            started.append(todo[len(started)])
            draw_bytes()

    bars.draw_bytes(f"{_BYTES_DESC}: 0.00B [00:00, ?B/s]")
    bars.draw_files(count_bar(f"Fetching {count} files", 0, count, 0.0))
    for _ in range(_WORKERS):
        start_next()
    for file in todo:
        while file.name not in cached.done:
            wanted = min(chunk, file.size - cached.partial.get(file.name, 0))
            written = ctx.storage.write(cached, file, wanted)
            draw_bytes()
            if written < wanted:
                blob = _blob_path(ctx, cached)
                ctx.err(f"\nOSError: [Errno 28] No space left on device: '{blob}'\n")
                return 1
            if fail_at is not None and cached.stored >= fail_at * cached.total:
                ctx.err(
                    "\nhttpx.RemoteProtocolError: peer closed connection without sending "
                    "complete message body (incomplete chunked read)\n"
                )
                return 1
            if await ctx.sleep_or_closed(step_delay):
                return 130  # the client went away; the partial blob stays for a resume
        finished = len(cached.done)
        elapsed = max(0.01, (cached.stored - start) / rate)
        if finished < count:
            bars.draw_files(count_bar(f"Fetching {count} files", finished, count, elapsed))
            start_next()
    elapsed = max(0.01, (cached.total - start) / rate)
    bars.close_files(count_bar(f"Fetching {count} files", count, count, elapsed))
    draw_bytes("Download complete")
    ctx.world.downloaded.add(cached.repo_id)
    ctx.out(f"{_repo_dir(ctx, cached.repo_id)}/snapshots/{snapshot_revision(cached.repo_id)}\n")
    return 0


def _dry_run(ctx: CommandContext, files: list[RepoFile], cached: CachedRepo | None) -> int:
    todo = [f for f in files if cached is None or f.name not in cached.done]
    ctx.err("\r" + count_bar(f"[dry-run] Fetching {len(files)} files", len(files), len(files), 0.5))
    ctx.err("\n")
    hidden = todo and ctx.world.faults.hub_hides_a_size  # its HEAD answer without a size
    sizeless = max(todo, key=lambda f: f.size) if hidden else None
    total = "an unknown size" if sizeless else hub_size(sum(f.size for f in todo))
    ctx.out(f"[dry-run] Will download {len(todo)} files (out of {len(files)}) totalling {total}.\n")
    width = max(len(f.name) for f in files)
    ctx.out(f"{'File':<{width}} Bytes to download\n{'-' * width} -----------------\n")
    for file in sorted(files, key=lambda f: f.name):
        size = hub_size(file.size) if file in todo and file is not sizeless else "-"
        ctx.out(f"{file.name:<{width}} {size}\n")
    return 0


def _cache_rm(ctx: CommandContext, args: list[str]) -> int:
    targets = [arg for arg in args if arg not in ("--yes", "-y")]
    if len(targets) != 1 or len(targets) == len(args):
        ctx.err("Error: give one cache id and --yes (no interactive confirmation over SSH)\n")
        return 2
    kind, _, repo_id = targets[0].partition("/")
    if kind != "model" or not REPO_ID.match(repo_id):
        ctx.err(f"Error: '{targets[0]}' is not a cache id such as model/<org>/<name>.\n")
        return 2
    if repo_id not in ctx.storage.hf_cache:
        ctx.err(f"Error: Could not find '{targets[0]}' in the cache.\n")
        return 1
    freed = ctx.storage.remove(repo_id)
    ctx.world.downloaded.discard(repo_id)
    ctx.out(f"✓ Deleted 1 repo(s) and 1 revision(s); freed {hub_size(freed)}.\n")
    return 0


def _repo_dir(ctx: CommandContext, repo_id: str) -> str:
    owner, name = repo_id.split("/")
    return f"{ctx.home()}/.cache/huggingface/hub/models--{owner}--{name}"


def _blob_path(ctx: CommandContext, repo: CachedRepo) -> str:
    return f"{_repo_dir(ctx, repo.repo_id)}/blobs/{snapshot_revision(repo.repo_id)}.incomplete"
