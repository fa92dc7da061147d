"""`./launch-cluster.sh` from spark-vllm-docker: stop, status, and `-d exec vllm serve ...`."""

from __future__ import annotations

import asyncio
import re
import shlex

from tests.sim.commands.context import CommandContext
from tests.sim.containers import LogLine
from tests.sim.world import SimWorld

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
# vllm serve flags the control plane may send: name -> value kind (None for switches).
SERVE_FLAGS: dict[str, str | None] = {
    "--port": "int",
    "--host": "str",
    "--max-model-len": "int",
    "--gpu-memory-utilization": "fraction",
    "--enable-prefix-caching": None,
    "--kv-cache-dtype": "kv_dtype",
    "--load-format": "load_format",
    "-tp": "int",
    "--tensor-parallel-size": "int",
    "--enforce-eager": None,
    "--trust-remote-code": None,
    "--enable-auto-tool-choice": None,
    "--tool-call-parser": "tool_parser",
    "--reasoning-parser": "reasoning_parser",
    "--enable-chunked-prefill": None,
    "--async-scheduling": None,
    "--disable-log-requests": None,
}


class UsageError(Exception):
    """Bad arguments; the script prints the message and exits 2."""


def _check_value(flag: str, kind: str, value: str) -> None:
    ok = True
    if kind == "int":
        ok = value.isdigit() and int(value) > 0
    elif kind == "fraction":
        try:
            ok = 0.0 < float(value) <= 1.0
        except ValueError:
            ok = False
    elif kind == "kv_dtype":
        ok = value in ("auto", "fp8")
    elif kind == "load_format":
        ok = value in ("auto", "safetensors", "fastsafetensors")
    elif kind == "tool_parser":
        ok = value in ("hermes", "mistral", "llama3_json", "pythonic")
    elif kind == "reasoning_parser":
        ok = value in ("qwen3", "deepseek_r1")
    if not ok:
        raise UsageError(f"Error: invalid value '{value}' for {flag}")


def parse_serve(args: list[str]) -> tuple[str, int | None]:
    """Validate `vllm serve MODEL [flags]`; return the model and --max-model-len."""
    if len(args) < 3 or args[0] != "vllm" or args[1] != "serve":
        raise UsageError("Error: exec expects 'vllm serve <model> [options]'")
    model = args[2]
    if not REPO_ID.match(model):
        raise UsageError(f"Error: invalid model id '{model}'")
    max_len: int | None = None
    index = 3
    while index < len(args):
        flag, has_value, inline = args[index].partition("=")  # `--flag=value` or `--flag value`
        if flag not in SERVE_FLAGS:
            raise UsageError(f"Error: unknown option '{flag}'")
        kind = SERVE_FLAGS[flag]
        if kind is not None:
            if not has_value:
                if index + 1 >= len(args):
                    raise UsageError(f"Error: option '{flag}' needs a value")
                index += 1
                inline = args[index]
            _check_value(flag, kind, inline)
            if flag == "--max-model-len":
                max_len = int(inline)
        elif has_value:
            raise UsageError(f"Error: option '{flag}' takes no value")
        index += 1
    return model, max_len


async def launch_cluster(ctx: CommandContext, argv: list[str]) -> int:
    if not ctx.in_repo:
        ctx.err(f"sh: 1: {argv[0]}: not found\n")
        return 127
    args = argv[1:]
    try:
        if args == ["stop"]:
            return await _stop(ctx)
        if args == ["status"]:
            return _status(ctx)
        return await _launch(ctx, args)
    except UsageError as err:
        ctx.err(f"{err}\n")
        ctx.err(
            "Usage: ./launch-cluster.sh [-n host,host] [--solo] [-d] exec vllm serve <model> ...\n"
        )
        return 2


def _status(ctx: CommandContext) -> int:
    container = ctx.world.vllm.container
    state = "not running" if container.removed else container.state  # gone after --rm
    for name in ctx.world.node_names:
        ctx.out(f"{container.name} on {name}: {state}\n")
    return 0


async def _stop(ctx: CommandContext) -> int:
    container = ctx.world.vllm.container
    for name in reversed(ctx.world.node_names):  # workers first, head last
        ctx.out(f"Stopping {container.name} on {name}...\n")
    await ctx.world.docker.stop(container)
    ctx.out("Cluster stopped.\n")
    return 0


async def _launch(ctx: CommandContext, args: list[str]) -> int:
    detached = False
    index = 0
    while index < len(args) and args[index] != "exec":
        arg = args[index]
        if arg == "-d":
            detached = True
        elif arg == "--solo":
            pass
        elif arg == "-n":
            if index + 1 >= len(args):
                raise UsageError("Error: option '-n' needs a value")
            index += 1
        else:
            raise UsageError(f"Error: unknown option '{arg}'")
        index += 1
    if index >= len(args):
        raise UsageError("Error: missing command (expected 'exec vllm serve ...')")
    serve = args[index + 1 :]
    model, max_len = parse_serve(serve)

    container = ctx.world.vllm.container
    ctx.out("Starting cluster...\n")
    queue = container.follow() if not detached else None
    try:
        if container.running:
            ctx.out("Cluster containers are already running. Skipping launch.\n")
        serving = await start_and_serve(ctx.world, model, max_len)
        ctx.out(f"Dispatched: {shlex.join(serve)}\n")
        if queue is not None:
            return await _attach(ctx, queue) if serving else 1
    finally:
        if queue is not None:
            container.unfollow(queue)
    return 0


async def start_and_serve(world: SimWorld, model: str, max_len: int | None) -> bool:
    """What `exec vllm serve` does: `docker run --rm ... sleep infinity` unless the container
    already runs, then `docker exec -d` the server inside it. False when the server could not
    start (another one holds the port)."""
    container = world.vllm.container
    if not container.running:
        await world.docker.run(container)
    return await world.vllm.serve(model, max_len)


async def _attach(ctx: CommandContext, queue: asyncio.Queue[LogLine | None]) -> int:
    """Without -d the script follows the server's output until it is up or dies."""
    while not ctx.closed.is_set():
        line = await queue.get()
        if line is None:
            return 1
        ctx.out(line.text + "\n")
        if "Application startup complete." in line.text:
            return 0
        if not ctx.world.vllm.process_running:  # the server exited (its last lines are out)
            return 1
    return 0
