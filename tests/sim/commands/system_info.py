"""`uname`, the `nvidia-smi --query-gpu` line a GB10 node prints, and its `/proc/meminfo`."""

from __future__ import annotations

from tests.sim.commands.context import CommandContext

_GPU_FIELDS = (
    "index",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "enforced.power.limit",
    "driver_version",
)
DRIVER_VERSION = "580.95.05"
# A DGX Spark's 128 GB of unified memory as the kernel reports it (kB).
MEM_TOTAL_KB = 125_821_184
_IDLE_USED_KB = 4_718_592  # the OS and the desktop
_CONTAINER_USED_KB = {"vllm_node": 88_080_384, "parakeet-asr": 3_145_728, "magpie-tts": 5_242_880}


async def uname(ctx: CommandContext, argv: list[str]) -> int:
    parts = {"-s": "Linux", "-n": ctx.node_name, "-r": "6.11.0-1016-nvidia", "-m": "aarch64"}
    if argv[1:] == ["-a"]:
        ctx.out(
            f"Linux {ctx.node_name} 6.11.0-1016-nvidia #16-Ubuntu SMP PREEMPT_DYNAMIC "
            "Mon Sep 29 11:47:31 UTC 2025 aarch64 aarch64 aarch64 GNU/Linux\n"
        )
        return 0
    letters = "".join(arg[1:] for arg in argv[1:] if arg.startswith("-") and len(arg) > 1)
    if any(not arg.startswith("-") for arg in argv[1:]) or any(
        f"-{c}" not in parts for c in letters
    ):
        ctx.err(
            f"uname: invalid option -- '{letters or argv[1]}'\n"
            "Try 'uname --help' for more information.\n"
        )
        return 1
    order = [flag for flag in ("-s", "-n", "-r", "-m") if flag[1] in letters] or ["-s"]
    ctx.out(" ".join(parts[flag] for flag in order) + "\n")
    return 0


def _gpu_values(ctx: CommandContext) -> dict[str, str]:
    vllm = ctx.world.vllm
    busy = 0
    if vllm.container.node_index == ctx.node_index and vllm.container.running:
        busy = min(100, 3 + 24 * vllm.busy_requests)
    values = {
        "index": "0",
        "name": "NVIDIA GB10",
        "utilization.gpu": str(busy),
        # GB10's unified memory has no separate framebuffer numbers.
        "memory.used": "[N/A]",
        "memory.total": "[N/A]",
        "temperature.gpu": str(38 + busy * 3 // 10),
        "power.draw": f"{11.8 + busy * 0.83:.2f}",
        # A GB10 has no power cap to report; a node given one prints it as nvidia-smi does.
        "enforced.power.limit": f"{limit:.2f}"
        if (limit := ctx.world.gpu_power_limits.get(ctx.node_index)) is not None
        else "[N/A]",
        "driver_version": DRIVER_VERSION,
    }
    for field in ctx.world.unreported_gpu_fields.get(ctx.node_index, ()):
        values[field] = "[N/A]"
    return values


def _meminfo(ctx: CommandContext) -> str:
    used = _IDLE_USED_KB + sum(
        _CONTAINER_USED_KB.get(container.name, 1_048_576)
        for container in ctx.world.containers_on(ctx.node_index)
        if container.running
    )
    available = MEM_TOTAL_KB - used
    lines = {
        "MemTotal": MEM_TOTAL_KB,
        "MemFree": available - 2_097_152,
        "MemAvailable": available,
        "Buffers": 65_536,
        "Cached": 2_031_616,
        "SwapTotal": 16_777_212,
        "SwapFree": 16_777_212,
    }
    return "".join(f"{key + ':':<16}{value:>8} kB\n" for key, value in lines.items())


async def cat(ctx: CommandContext, argv: list[str]) -> int:
    """Only `/proc/meminfo` exists on the simulated node's file system."""
    for path in argv[1:]:
        if path != "/proc/meminfo":
            ctx.err(f"cat: {path}: No such file or directory\n")
            return 1
        ctx.out(_meminfo(ctx))
    return 0


async def nvidia_smi(ctx: CommandContext, argv: list[str]) -> int:
    query: list[str] | None = None
    fmt: str | None = None
    for arg in argv[1:]:
        if arg.startswith("--query-gpu="):
            query = arg.split("=", 1)[1].split(",")
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
        else:
            ctx.err(
                'Invalid combination of input arguments. Please run "nvidia-smi -h" for help.\n'
            )
            return 2
    if query is None or fmt is None:
        ctx.err('Invalid combination of input arguments. Please run "nvidia-smi -h" for help.\n')
        return 2
    for field in query:
        if field not in _GPU_FIELDS:
            ctx.err(f'Field "{field}" is not a valid field to query.\n')
            return 2
    values = _gpu_values(ctx)
    options = set(fmt.split(","))
    if "csv" not in options:
        ctx.err(f'"{fmt}" is not a valid format.\n')
        return 2
    if "noheader" not in options:
        ctx.out(
            ", ".join(field if "nounits" in options else f"{field} [%]" for field in query) + "\n"
        )
    ctx.out(", ".join(values[field] for field in query) + "\n")
    return 0
