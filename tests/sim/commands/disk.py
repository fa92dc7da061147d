"""`df --output=size,avail -B1 PATH`: the node's home filesystem, in bytes (GNU coreutils)."""

from __future__ import annotations

from tests.sim.commands.context import CommandContext

_COLUMNS = {"size": "1B-blocks", "avail": "Avail", "used": "Used"}


async def df(ctx: CommandContext, argv: list[str]) -> int:
    columns: list[str] | None = None
    block_bytes = False
    paths: list[str] = []
    for arg in argv[1:]:
        if arg.startswith("--output="):
            columns = arg.split("=", 1)[1].split(",")
        elif arg == "-B1":
            block_bytes = True
        elif arg.startswith("-"):
            ctx.err(f"df: unrecognized option '{arg}'\nTry 'df --help' for more information.\n")
            return 1
        else:
            paths.append(arg)
    if columns is None or not block_bytes or any(c not in _COLUMNS for c in columns):
        ctx.err("df: this node answers only `df --output=size,avail,used -B1 PATH`\n")
        return 1
    home = ctx.home()
    for path in paths:
        resolved = ctx.cwd if path == "." else ctx.resolve(path)
        if not resolved.startswith(home):
            ctx.err(f"df: {path}: No such file or directory\n")
            return 1
    storage = ctx.storage
    values = {
        "size": storage.size,
        "avail": storage.free,
        "used": storage.size - storage.free,
    }
    ctx.out(" ".join(f"{_COLUMNS[c]:>14}" for c in columns) + "\n")
    for _ in paths or [home]:
        ctx.out(" ".join(f"{values[c]:>14}" for c in columns) + "\n")
    return 0
