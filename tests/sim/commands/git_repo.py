"""`git fetch|rev-parse|rev-list|log|pull` and `./build-and-copy.sh -c` in the spark-vllm-docker
checkout (see `tests/sim/repo_state.py` for the history and the failure switches)."""

from __future__ import annotations

import re

from tests.sim.commands.context import CommandContext
from tests.sim.repo_state import commit_sha, commit_subject

_REMOTE = "https://github.com/eugr/spark-vllm-docker.git"
_BUILD_STEPS = (
    "Building vllm-node image (this can take a while)...",
    '#0 building with "default" instance using docker driver',
    "#1 [internal] load build definition from Dockerfile",
    "#1 transferring dockerfile: 4.21kB done",
    "#2 [internal] load metadata for nvcr.io/nvidia/pytorch:25.09-py3",
    "#5 [builder 3/9] RUN pip install --no-build-isolation -e .",
    "#9 exporting to image",
    "#9 naming to docker.io/library/vllm-node:latest done",
    "Build complete.",
)
_RANGE = "HEAD..@{u}"
_MAX_COUNT = re.compile(r"^(?:--max-count=|-n)(\d+)$")


async def git(ctx: CommandContext, argv: list[str]) -> int:
    if not ctx.in_repo:
        ctx.err("fatal: not a git repository (or any of the parent directories): .git\n")
        return 128
    args = argv[1:]
    sub = args[0] if args else ""
    handler = {
        "fetch": _fetch,
        "rev-parse": _rev_parse,
        "rev-list": _rev_list,
        "log": _log,
        "pull": _pull,
    }.get(sub)
    if handler is None:
        ctx.err(f"git: '{sub}' is not a git command. See 'git --help'.\n")
        return 1
    return handler(ctx, args[1:])


def _unsupported(ctx: CommandContext, sub: str, args: list[str]) -> int:
    ctx.err(f"fatal: unsupported arguments for git {sub} on this node: {' '.join(args)}\n")
    return 128


def _fetch(ctx: CommandContext, args: list[str]) -> int:
    if any(arg not in ("--quiet", "-q") for arg in args):
        ctx.err(f"error: unknown option `{args}'\n")
        return 129
    if ctx.world.repo.fetch_fails:
        ctx.err(f"fatal: unable to access '{_REMOTE}/': Could not resolve host: github.com\n")
        return 128
    return 0


def _rev_parse(ctx: CommandContext, args: list[str]) -> int:
    repo = ctx.world.repo
    known = {"HEAD": repo.head, "@{u}": repo.upstream, "@{upstream}": repo.upstream}
    if not args or any(arg not in known for arg in args):
        return _unsupported(ctx, "rev-parse", args)
    for arg in args:
        ctx.out(known[arg] + "\n")
    return 0


def _rev_list(ctx: CommandContext, args: list[str]) -> int:
    if args != ["--count", _RANGE]:
        return _unsupported(ctx, "rev-list", args)
    ctx.out(f"{ctx.world.repo.behind}\n")
    return 0


def _log(ctx: CommandContext, args: list[str]) -> int:
    """`git log [--max-count=N] --format=<fmt with %H %h %s> HEAD..@{u}`, newest first."""
    fmt: str | None = None
    limit: int | None = None
    for arg in args:
        if arg.startswith(("--format=", "--pretty=format:")):
            fmt = arg.split("=", 1)[1].removeprefix("format:")
        elif match := _MAX_COUNT.match(arg):
            limit = int(match[1])
        elif arg != _RANGE:
            return _unsupported(ctx, "log", args)
    if fmt is None or _RANGE not in args:
        return _unsupported(ctx, "log", args)
    repo = ctx.world.repo
    numbers = range(repo.position + repo.behind, repo.position, -1)
    for count, number in enumerate(numbers):
        if limit is not None and count >= limit:
            break
        sha = commit_sha(number)
        line = fmt.replace("%H", sha).replace("%h", sha[:7]).replace("%s", commit_subject(number))
        ctx.out(line.replace("%x09", "\t") + "\n")
    return 0


def _pull(ctx: CommandContext, args: list[str]) -> int:
    if args != ["--ff-only"]:
        return _unsupported(ctx, "pull", args)
    repo = ctx.world.repo
    if repo.fetch_fails:
        ctx.err(f"fatal: unable to access '{_REMOTE}/': Could not resolve host: github.com\n")
        return 1
    if repo.behind == 0:
        ctx.out("Already up to date.\n")
        return 0
    if repo.dirty:
        ctx.err(
            "error: Your local changes to the following files would be overwritten by merge:\n"
            "\tlaunch-cluster.sh\n"
            "Please commit your changes or stash them before you merge.\nAborting\n"
        )
        return 1
    old, new = repo.head[:7], repo.upstream[:7]
    ctx.out(f"Updating {old}..{new}\nFast-forward\n")
    ctx.out(f" launch-cluster.sh | {repo.behind * 3} ++--\n 1 file changed\n")
    repo.pull()
    return 0


async def build_and_copy(ctx: CommandContext, argv: list[str]) -> int:
    if not ctx.in_repo:
        ctx.err(f"sh: 1: {argv[0]}: not found\n")
        return 127
    if argv[1:] != ["-c"]:
        ctx.err(f"Unknown option: {' '.join(argv[1:])}\nUsage: ./build-and-copy.sh [-c]\n")
        return 2
    fails = ctx.world.repo.build_fails
    steps = _BUILD_STEPS[:4] if fails else _BUILD_STEPS
    delay = ctx.world.config.build_seconds / (len(_BUILD_STEPS) + len(ctx.world.node_names))
    for step in steps:
        ctx.out(step + "\n")
        if await ctx.sleep_or_closed(delay):
            return 130
    if fails:
        ctx.out(
            '#5 ERROR: failed to solve: process "/bin/sh -c pip install" '
            "did not complete successfully: exit code: 1\n"
        )
        return 1
    for name in ctx.world.node_names[1:]:
        ctx.out(f"Copying vllm-node:latest to {name}...\n")
        if await ctx.sleep_or_closed(delay):
            return 130
        ctx.out(f"Loaded image: vllm-node:latest ({name})\n")
    ctx.out("Done.\n")
    return 0
