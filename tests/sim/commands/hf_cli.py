"""`hf download REPO [--dry-run]` and `hf cache rm model/REPO --yes` (huggingface_hub 1.x CLI).

Progress is what the real CLI prints on stderr without a TTY: tqdm redraws separated by `\r`,
the aggregated bytes bar ("Downloading (incomplete total...)" until every file's size is known,
then "Downloading", at the end "Download complete") and the "Fetching N files" counting bar.
The snapshot path goes to stdout. Bytes land in the node's `NodeStorage`, so the disk fills,
a download can run out of space, and a re-run resumes the partial files.
"""

from __future__ import annotations

from tests.sim.commands.context import CommandContext
from tests.sim.commands.launch_cluster import REPO_ID
from tests.sim.node_storage import CachedRepo, RepoFile, repo_files, snapshot_revision
from tests.sim.tqdm_format import byte_bar, count_bar, hub_size

_STEPS = 20  # bytes-bar redraws over a whole download


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
    total = cached.total
    rate = config.download_rate
    count = len(files)
    ctx.err("\rDownloading (incomplete total...): 0.00B [00:00, ?B/s]")
    ctx.err("\r" + count_bar(f"Fetching {count} files", len(cached.done), count, 0.0))
    start = cached.stored
    chunk = max(1, (total - start) // _STEPS)
    fail_at = ctx.world.faults.download_fails_at
    step_delay = config.download_seconds / _STEPS
    for file in files:
        while file.name not in cached.done:
            wanted = min(chunk, file.size - cached.partial.get(file.name, 0))
            written = storage.write(cached, file, wanted)
            stored = cached.stored
            elapsed = (stored - start) / rate
            ctx.err("\r" + byte_bar("Downloading", stored, total, elapsed, rate))
            if written < wanted:
                blob = _blob_path(ctx, cached)
                ctx.err(f"\nOSError: [Errno 28] No space left on device: '{blob}'\n")
                return 1
            if fail_at is not None and stored >= fail_at * total:
                ctx.err(
                    "\nhttpx.RemoteProtocolError: peer closed connection without sending "
                    "complete message body (incomplete chunked read)\n"
                )
                return 1
            if await ctx.sleep_or_closed(step_delay):
                return 130  # the client went away; the partial blob stays for a resume
        ctx.err("\r" + count_bar(f"Fetching {count} files", len(cached.done), count, 1.0))
    elapsed = max(0.01, (total - start) / rate)
    ctx.err("\r" + byte_bar("Download complete", total, total, elapsed, rate) + "\n")
    ctx.world.downloaded.add(repo_id)
    ctx.out(f"{_repo_dir(ctx, repo_id)}/snapshots/{snapshot_revision(repo_id)}\n")
    return 0


def _dry_run(ctx: CommandContext, files: list[RepoFile], cached: CachedRepo | None) -> int:
    todo = [f for f in files if cached is None or f.name not in cached.done]
    ctx.err("\r" + count_bar(f"[dry-run] Fetching {len(files)} files", len(files), len(files), 0.5))
    ctx.err("\n")
    ctx.out(
        f"[dry-run] Will download {len(todo)} files (out of {len(files)}) "
        f"totalling {hub_size(sum(f.size for f in todo))}.\n"
    )
    width = max(len(f.name) for f in files)
    ctx.out(f"{'File':<{width}} Bytes to download\n{'-' * width} -----------------\n")
    for file in sorted(files, key=lambda f: f.name):
        size = hub_size(file.size) if file in todo else "-"
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
