"""The node's `sh -c`: split `a && b && c`, run each argv, stop at the first failure."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable

from tests.sim.commands.context import CommandContext
from tests.sim.commands.disk import df
from tests.sim.commands.docker_cli import docker
from tests.sim.commands.git_repo import build_and_copy, git
from tests.sim.commands.hf_cli import hf
from tests.sim.commands.launch_cluster import launch_cluster
from tests.sim.commands.system_info import cat, nvidia_smi, uname

Program = Callable[[CommandContext, list[str]], Awaitable[int]]
PROGRAMS: dict[str, Program] = {
    "docker": docker,
    "./launch-cluster.sh": launch_cluster,
    "git": git,
    "./build-and-copy.sh": build_and_copy,
    "hf": hf,
    "df": df,
    "nvidia-smi": nvidia_smi,
    "uname": uname,
    "cat": cat,
}


def split_chain(command: str) -> list[list[str]]:
    """`cd x && git fetch` -> [["cd", "x"], ["git", "fetch"]]; ValueError on bad quoting."""
    chain: list[list[str]] = [[]]
    for token in shlex.split(command):
        if token == "&&":
            chain.append([])
        else:
            chain[-1].append(token)
    return chain


async def _cd(ctx: CommandContext, argv: list[str]) -> int:
    target = ctx.resolve(argv[1]) if len(argv) > 1 else ctx.home()
    known = {ctx.home(), ctx.resolve(ctx.world.config.repo_path)}
    if target.rstrip("/") not in known:
        ctx.err(f"sh: 1: cd: can't cd to {argv[1]}\n")
        return 2
    ctx.cwd = target.rstrip("/")
    return 0


async def _env(ctx: CommandContext, argv: list[str]) -> int:
    """`env NAME=VALUE... PROGRAM ARGS...`: the program runs with those variables set."""
    args = argv[1:]
    saved = dict(ctx.env)
    while args and "=" in args[0] and not args[0].startswith("="):
        name, _, value = args.pop(0).partition("=")
        ctx.env[name] = value
    try:
        if not args:
            ctx.out("".join(f"{name}={value}\n" for name, value in ctx.env.items()))
            return 0
        program = PROGRAMS.get(args[0])
        if program is None:
            ctx.err(f"env: '{args[0]}': No such file or directory\n")
            return 127
        return await program(ctx, args)
    finally:
        ctx.env = saved


async def run_command_line(ctx: CommandContext, command: str) -> int:
    try:
        chain = split_chain(command)
    except ValueError:
        ctx.err("sh: 1: Syntax error: Unterminated quoted string\n")
        return 2
    if any(not argv for argv in chain):
        ctx.err('sh: 1: Syntax error: "&&" unexpected\n')
        return 2
    for argv in chain:
        program = {"cd": _cd, "env": _env}.get(argv[0]) or PROGRAMS.get(argv[0])
        if program is None:
            ctx.err(f"sh: 1: {argv[0]}: not found\n")
            return 127
        code = await program(ctx, argv)
        if code != 0:
            return code
    return 0
