"""`docker ps|inspect|image inspect|start|stop|restart|logs|top`, printing what the Docker CLI
prints."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime
from typing import Any

from tests.sim.commands.context import CommandContext
from tests.sim.commands.docker_images import build, rm, run, size_bytes
from tests.sim.containers import EXITED, RESTARTING, RUNNING, Container, LogLine
from tests.sim.docker_time import (
    created_at,
    human_duration,
    now,
    parse_since,
    rfc3339_nano,
)
from tests.sim.world import Image


def _status(container: Container) -> str:
    moment = now()
    if container.state == RUNNING and container.started_at is not None:
        return f"Up {human_duration(moment - container.started_at)}"
    if container.state == EXITED and container.finished_at is not None:
        ago = human_duration(moment - container.finished_at)
        return f"Exited ({container.exit_code}) {ago} ago"
    if container.state == RESTARTING:
        return f"Restarting ({container.exit_code}) Less than a second ago"
    return "Created"


def _ps_row(container: Container) -> dict[str, str]:
    return {
        "Command": f'"{container.command[:20]}…"'
        if len(container.command) > 20
        else f'"{container.command}"',
        "CreatedAt": created_at(container.created),
        "ID": container.id[:12],
        "Image": container.image,
        "Labels": "",
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": container.name,
        "Networks": "host",
        "Ports": "",
        "RunningFor": f"{human_duration(now() - container.created)} ago",
        "Size": "0B",
        "State": container.state,
        "Status": _status(container),
    }


def _inspect(container: Container, image: Image | None) -> dict[str, Any]:
    """The container's object; `image` is the one it was created from when this node built it
    (containers the simulator started itself have a made-up image id)."""
    return {
        "Id": container.id,
        "Created": rfc3339_nano(container.created),
        "Path": container.command.split()[0],
        "Args": container.command.split()[1:],
        "State": {
            "Status": container.state,
            "Running": container.state == RUNNING,
            "Paused": False,
            "Restarting": container.state == RESTARTING,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 4242 + container.starts if container.state == RUNNING else 0,
            "ExitCode": container.exit_code,
            "Error": "",
            "StartedAt": rfc3339_nano(container.started_at),
            "FinishedAt": rfc3339_nano(container.finished_at),
        },
        "Image": image.id if image is not None else "sha256:" + container.id[::-1],
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {**_host_config(container.run_flags), "AutoRemove": container.auto_remove},
        "Config": {
            "Hostname": "spark",
            "Image": container.image,
            "Cmd": container.command.split(),
            "Labels": dict(container.labels),
        },
    }


def _host_config(flags: list[str]) -> dict[str, Any]:
    """Docker's HostConfig for the `docker run` options the container was created with."""
    options = dict(zip(flags[::2], flags[1::2], strict=True))
    return {
        "NetworkMode": "host",
        "RestartPolicy": {"Name": options.get("--restart", "no"), "MaximumRetryCount": 0},
        "Memory": size_bytes(options["--memory"]) if "--memory" in options else 0,
        "MemorySwap": size_bytes(options["--memory-swap"]) if "--memory-swap" in options else 0,
        "DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]
        if options.get("--gpus") == "all"
        else None,
    }


async def docker(ctx: CommandContext, argv: list[str]) -> int:
    if len(argv) < 2:
        ctx.err("Usage:  docker [OPTIONS] COMMAND\n")
        return 1
    sub, args = argv[1], argv[2:]
    handler = {
        "ps": _ps,
        "inspect": _inspect_cmd,
        "image": _image_cmd,
        "start": _lifecycle,
        "stop": _lifecycle,
        "restart": _lifecycle,
        "logs": _logs,
        "top": _top,
        "build": build,
        "run": run,
        "rm": rm,
    }.get(sub)
    if handler is None:
        ctx.err(f"docker: '{sub}' is not a docker command.\nSee 'docker --help'\n")
        return 1
    return await handler(ctx, sub, args)


async def _ps(ctx: CommandContext, sub: str, args: list[str]) -> int:
    show_all = False
    fmt: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-a", "--all"):
            show_all = True
        elif arg == "--format" and index + 1 < len(args):
            fmt = args[index + 1]
            index += 1
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
        else:
            ctx.err(f"unknown flag: {arg}\nSee 'docker ps --help'.\n")
            return 125
        index += 1
    rows = [c for c in ctx.world.containers_on(ctx.node_index) if show_all or c.running]
    if fmt is None:
        ctx.out(
            "CONTAINER ID   IMAGE                  COMMAND   CREATED   STATUS   PORTS   NAMES\n"
        )
        for container in rows:
            row = _ps_row(container)
            ctx.out(
                f"{row['ID']}   {row['Image']:<20}   {row['Command']}   {row['RunningFor']}   "
                f"{row['Status']}           {row['Names']}\n"
            )
        return 0
    if fmt.strip() != "{{json .}}":
        ctx.err("template: only '{{json .}}' is supported by this node\n")
        return 125
    for container in rows:
        ctx.out(json.dumps(_ps_row(container), ensure_ascii=False) + "\n")
    return 0


def _find_image(ctx: CommandContext, name: str) -> Image | None:
    """An image of this node by tag (`:latest` implied) or by id."""
    images = ctx.world.images[ctx.node_index]
    tag = name if ":" in name.rpartition("/")[2] else f"{name}:latest"
    if tag in images:
        return images[tag]
    return next((image for image in images.values() if image.id == name), None)


def _inspect_image(image: Image) -> dict[str, Any]:
    return {
        "Id": image.id,
        "RepoTags": [image.tag],
        "RepoDigests": [],
        "Architecture": "arm64",
        "Os": "linux",
        "Config": {"Labels": dict(image.labels)},
    }


async def _inspect_cmd(ctx: CommandContext, sub: str, args: list[str]) -> int:
    """`docker inspect NAME...`: a container of that name, else an image (as the CLI looks
    objects up when no --type is given)."""
    names = [arg for arg in args if not arg.startswith("-")]
    if not names:
        ctx.err('"docker inspect" requires at least 1 argument.\n')
        return 1
    found: list[dict[str, Any]] = []
    code = 0
    for name in names:
        container = ctx.world.container_on(ctx.node_index, name)
        image = _find_image(ctx, name) if container is None else None
        if container is not None:
            found.append(_inspect(container, _find_image(ctx, container.image)))
        elif image is not None:
            found.append(_inspect_image(image))
        else:
            ctx.err(f"Error: No such object: {name}\n")
            code = 1
    ctx.out(json.dumps(found, indent=4) + "\n")
    return code


async def _image_cmd(ctx: CommandContext, sub: str, args: list[str]) -> int:
    """`docker image inspect NAME...` (the one `docker image` command this node knows)."""
    if args[:1] != ["inspect"]:
        ctx.err(f"docker: 'image {' '.join(args[:1])}' is not a docker command.\n")
        return 1
    names = [arg for arg in args[1:] if not arg.startswith("-")]
    if not names:
        ctx.err('"docker image inspect" requires at least 1 argument.\n')
        return 1
    found: list[dict[str, Any]] = []
    code = 0
    for name in names:
        if (image := _find_image(ctx, name)) is not None:
            found.append(_inspect_image(image))
        else:
            shown = name if ":" in name.rpartition("/")[2] else f"{name}:latest"
            ctx.err(f"Error response from daemon: No such image: {shown}\n")
            code = 1
    ctx.out(json.dumps(found, indent=4) + "\n")
    return code


async def _lifecycle(ctx: CommandContext, sub: str, args: list[str]) -> int:
    names: list[str] = []
    index = 0
    while index < len(args):
        if args[index] in ("-t", "--time", "-s", "--signal"):
            index += 2
            continue
        if args[index].startswith("-"):
            ctx.err(f"unknown flag: {args[index]}\nSee 'docker {sub} --help'.\n")
            return 125
        names.append(args[index])
        index += 1
    if not names:
        ctx.err(f'"docker {sub}" requires at least 1 argument.\n')
        return 1
    code = 0
    engine = ctx.world.docker
    for name in names:
        container = ctx.world.container_on(ctx.node_index, name)
        if container is None:
            ctx.err(f"Error response from daemon: No such container: {name}\n")
            code = 1
            continue
        if sub == "start":
            await engine.start(container)
        elif sub == "stop":
            await engine.stop(container)
        else:
            await engine.restart(container)
        ctx.out(f"{name}\n")
    return code


async def _top(ctx: CommandContext, sub: str, args: list[str]) -> int:
    """`docker top CONTAINER`: its processes in `ps -ef` columns (no ps options taken)."""
    if len(args) != 1:
        ctx.err(f'"docker {sub}" requires exactly 1 argument.\n')
        return 1
    container = ctx.world.container_on(ctx.node_index, args[0])
    if container is None or container.removed:
        ctx.err(f"Error response from daemon: No such container: {args[0]}\n")
        return 1
    if not container.running:
        ctx.err(f"Error response from daemon: container {container.id} is not running\n")
        return 1
    vllm = ctx.world.vllm
    commands = vllm.processes() if container is vllm.container else [container.command]
    columns = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
    ctx.out("".join(f"{name:<20}" for name in columns[:-1]) + columns[-1] + "\n")
    started = (container.started_at or now()).strftime("%H:%M")
    for index, command in enumerate(commands):
        pid, parent = 41_000 + index, 40_990 if index == 0 else 41_000
        row = ("root", str(pid), str(parent), "0", started, "?", "00:00:00")
        ctx.out("".join(f"{value:<20}" for value in row) + command + "\n")
    return 0


def _render(line: LogLine, timestamps: bool) -> str:
    return f"{rfc3339_nano(line.at)} {line.text}\n" if timestamps else f"{line.text}\n"


async def _logs(ctx: CommandContext, sub: str, args: list[str]) -> int:
    follow = timestamps = False
    since: datetime | None = None
    tail: int | None = None
    name: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        value: str | None = None
        if "=" in arg and arg.startswith("--"):
            arg, value = arg.split("=", 1)
        if arg in ("-f", "--follow"):
            follow = True
        elif arg in ("-t", "--timestamps"):
            timestamps = True
        elif arg in ("--since", "--tail", "-n"):
            if value is None:
                if index + 1 >= len(args):
                    ctx.err(f"flag needs an argument: {arg}\n")
                    return 125
                index += 1
                value = args[index]
            if arg == "--since":
                try:
                    since = parse_since(value, now())
                except ValueError:
                    ctx.err(
                        f'invalid value "{value}" for flag --since: '
                        "failed to parse value as time or duration\n"
                    )
                    return 125
            elif value != "all":
                if not value.isdigit():
                    ctx.err(f'invalid argument "{value}" for "-n, --tail" flag\n')
                    return 125
                tail = int(value)
        elif arg.startswith("-"):
            ctx.err(f"unknown flag: {arg}\nSee 'docker logs --help'.\n")
            return 125
        elif name is None:
            name = arg
        else:
            ctx.err('"docker logs" requires exactly 1 argument.\n')
            return 1
        index += 1
    if name is None:
        ctx.err('"docker logs" requires exactly 1 argument.\n')
        return 1
    container = ctx.world.container_on(ctx.node_index, name)
    if container is None:
        ctx.err(f"Error response from daemon: No such container: {name}\n")
        return 1
    # Subscribe before reading the history so no line falls between the two.
    queue = container.follow() if follow and container.running else None
    try:
        lines = [line for line in container.logs if since is None or line.at >= since]
        if tail is not None:
            lines = lines[-tail:] if tail else []
        for line in lines:
            ctx.out(_render(line, timestamps))
        if queue is not None:
            await _stream(ctx, queue, timestamps)
    finally:
        if queue is not None:
            container.unfollow(queue)
    return 0


async def _stream(
    ctx: CommandContext, queue: asyncio.Queue[LogLine | None], timestamps: bool
) -> None:
    closed = asyncio.ensure_future(ctx.closed.wait())
    getter: asyncio.Future[LogLine | None] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                return
            line = getter.result()
            if line is None:  # the container stopped
                return
            ctx.out(_render(line, timestamps))
    finally:
        # Also when the session task itself is cancelled (the simulator stopping): no getter
        # may outlive the command, or the test harness reports it as a lingering task.
        for pending in (getter, closed):
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
