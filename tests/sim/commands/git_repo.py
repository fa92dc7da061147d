"""`git fetch|rev-list|pull` and `./build-and-copy.sh -c` inside the spark-vllm-docker checkout."""

from __future__ import annotations

from tests.sim.commands.context import CommandContext

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


async def git(ctx: CommandContext, argv: list[str]) -> int:
    if not ctx.in_repo:
        ctx.err("fatal: not a git repository (or any of the parent directories): .git\n")
        return 128
    args = argv[1:]
    repo = ctx.world.repo
    if args and args[0] == "fetch":
        if any(arg not in ("--quiet", "-q") for arg in args[1:]):
            ctx.err(f"error: unknown option `{args[1:]}'\n")
            return 129
        return 0
    if args == ["rev-list", "--count", "HEAD..@{u}"]:
        ctx.out(f"{repo.behind}\n")
        return 0
    if args == ["pull", "--ff-only"]:
        if repo.behind == 0:
            ctx.out("Already up to date.\n")
            return 0
        new_head = f"{int(repo.head, 16) + repo.behind:07x}"[-7:]
        ctx.out(f"Updating {repo.head}..{new_head}\nFast-forward\n")
        ctx.out(f" launch-cluster.sh | {repo.behind * 3} ++--\n 1 file changed\n")
        repo.head = new_head
        repo.behind = 0
        return 0
    if args and args[0] in ("rev-list", "pull"):
        ctx.err(
            f"fatal: unsupported arguments for git {args[0]} on this node: {' '.join(args[1:])}\n"
        )
        return 128
    ctx.err(f"git: '{args[0] if args else ''}' is not a git command. See 'git --help'.\n")
    return 1


async def build_and_copy(ctx: CommandContext, argv: list[str]) -> int:
    if not ctx.in_repo:
        ctx.err(f"sh: 1: {argv[0]}: not found\n")
        return 127
    if argv[1:] != ["-c"]:
        ctx.err(f"Unknown option: {' '.join(argv[1:])}\nUsage: ./build-and-copy.sh [-c]\n")
        return 2
    for step in _BUILD_STEPS[:4] if ctx.world.repo.build_fails else _BUILD_STEPS:
        ctx.out(step + "\n")
        if await ctx.sleep_or_closed(0.03):
            return 130
    if ctx.world.repo.build_fails:
        ctx.out(
            '#5 ERROR: failed to solve: process "/bin/sh -c pip install" '
            "did not complete successfully: exit code: 1\n"
        )
        return 1
    for name in ctx.world.node_names[1:]:
        ctx.out(f"Copying vllm-node:latest to {name}...\n")
        if await ctx.sleep_or_closed(0.03):
            return 130
        ctx.out(f"Loaded image: vllm-node:latest ({name})\n")
    ctx.out("Done.\n")
    return 0
