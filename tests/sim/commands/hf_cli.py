"""`hf download <repo-id>`: tqdm progress on stderr, the snapshot path on stdout."""

from __future__ import annotations

import hashlib

from tests.sim.commands.context import CommandContext
from tests.sim.commands.launch_cluster import REPO_ID

_BAR_WIDTH = 10


def _progress(done: int, total: int, elapsed: int) -> str:
    filled = _BAR_WIDTH * done // total
    bar = "█" * filled + " " * (_BAR_WIDTH - filled)
    percent = 100 * done // total
    remaining = max(0, (total - done) * 2)
    return (
        f"Fetching {total} files: {percent:3d}%|{bar}| {done}/{total} "
        f"[00:{elapsed:02d}<00:{remaining:02d}, 2.1MB/s]"
    )


async def hf(ctx: CommandContext, argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "download":
        ctx.err("usage: hf <command> [<args>]\nhf: error: argument {download}: invalid choice\n")
        return 2
    repo_id = argv[2]
    if any(arg.startswith("-") for arg in argv[3:]) or len(argv) > 3:
        ctx.err(f"hf: error: unrecognized arguments: {' '.join(argv[3:])}\n")
        return 2
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
    total = 12
    step_delay = ctx.world.config.download_seconds / total
    # tqdm redraws its bar with carriage returns and ends with a newline.
    for done in range(total + 1):
        ctx.err("\r" + _progress(done, total, done))
        if done < total and await ctx.sleep_or_closed(step_delay):
            return 130
    ctx.err("\n")
    revision = hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()
    owner, name = repo_id.split("/")
    ctx.world.downloaded.add(repo_id)
    ctx.out(f"{ctx.home()}/.cache/huggingface/hub/models--{owner}--{name}/snapshots/{revision}\n")
    return 0
