"""`docker build`, `docker run -d` and `docker rm [-f]`: images built from a context the client
shipped over SFTP, containers created with checked flags (the speech container's lifecycle)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.sim.commands.context import CommandContext
from tests.sim.containers import Container
from tests.sim.world import Image

_TAG = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,127}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}=[^\n]{0,256}$")
_SIZE = re.compile(r"^(\d+)([bkmg]?)$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=[^\n]*$")
_PORT = re.compile(r"^\d{1,5}:\d{1,5}$")
_VOLUME = re.compile(r"^[A-Za-z0-9_.-]+:/[A-Za-z0-9_./-]*$")
_RESTART = ("no", "always", "unless-stopped", "on-failure")
# docker run options the control plane may send, with a check of their value.
_RUN_OPTIONS = {
    "--name": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$").fullmatch,
    "--gpus": lambda value: value == "all",
    "--restart": lambda value: value in _RESTART,
    "--memory": _SIZE.fullmatch,
    "--memory-swap": _SIZE.fullmatch,
    "--shm-size": _SIZE.fullmatch,
    "-p": _PORT.fullmatch,
    "-v": _VOLUME.fullmatch,
    "-e": _ENV.fullmatch,
}
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def size_bytes(text: str) -> int:
    match = _SIZE.fullmatch(text)
    assert match is not None
    return int(match[1]) * _UNITS[match[2]]


def _dockerfile_steps(dockerfile: str) -> tuple[str, list[str]]:
    """The base image and the build steps BuildKit would number (FROM, WORKDIR, COPY, RUN)."""
    args: dict[str, str] = {}
    base = ""
    steps: list[str] = []
    # A trailing backslash continues the instruction on the next line.
    for raw in dockerfile.replace("\\\n", " ").splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip()
        elif word == "FROM":
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], ""), rest.split()[0])
            steps.append(f"FROM {base}")
        elif word in ("WORKDIR", "COPY", "RUN", "ADD"):
            steps.append(f"{word} {rest}")
    return base, steps


async def build(ctx: CommandContext, sub: str, args: list[str]) -> int:
    """`docker build -t TAG [--label K=V]... CONTEXT` with BuildKit's plain progress output."""
    tag: str | None = None
    labels: dict[str, str] = {}
    context: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-t", "--tag", "--label") and index + 1 < len(args):
            value = args[index + 1]
            index += 1
            if arg == "--label":
                if not _LABEL.fullmatch(value):
                    ctx.err(f'invalid argument "{value}" for "--label" flag\n')
                    return 125
                key, _, label = value.partition("=")
                labels[key] = label
            elif not _TAG.fullmatch(value):
                ctx.err(f'invalid argument "{value}" for "-t, --tag" flag: invalid reference\n')
                return 125
            else:
                tag = value
        elif arg.startswith("-"):
            ctx.err(f"unknown flag: {arg}\nSee 'docker build --help'.\n")
            return 125
        elif context is None:
            context = arg
        else:
            ctx.err('"docker build" requires exactly 1 argument.\n')
            return 1
        index += 1
    if context is None or tag is None:
        ctx.err('"docker build" requires exactly 1 argument and a -t tag on this node.\n')
        return 1
    root = _host_path(ctx, context)
    dockerfile = root / "Dockerfile" if root is not None else None
    if dockerfile is None or not dockerfile.is_file():
        ctx.err(
            "ERROR: failed to solve: failed to read dockerfile: "
            f"open {context}/Dockerfile: no such file or directory\n"
        )
        return 1
    text = dockerfile.read_text(encoding="utf-8")
    base, steps = _dockerfile_steps(text)
    delay = ctx.world.config.build_seconds / (len(steps) + 3)
    ctx.out('#0 building with "default" instance using docker driver\n\n')
    ctx.out("#1 [internal] load build definition from Dockerfile\n")
    ctx.out(f"#1 transferring dockerfile: {len(text.encode())}B done\n#1 DONE 0.0s\n\n")
    ctx.out(f"#2 [internal] load metadata for {base}\n#2 DONE 0.4s\n\n")
    total = len(steps)
    for number, step in enumerate(steps, start=1):
        ctx.out(f"#{number + 2} [{number}/{total}] {step}\n")
        if await ctx.sleep_or_closed(delay):
            return 130
        if ctx.world.faults.docker_build_fails and step.startswith("RUN"):
            command = step.removeprefix("RUN ")
            ctx.out(
                f'#{number + 2} ERROR: process "/bin/sh -c {command}" did not complete '
                "successfully: exit code: 1\n"
            )
            ctx.err(
                f'ERROR: failed to solve: process "/bin/sh -c {command}" did not complete '
                "successfully: exit code: 1\n"
            )
            return 1
        ctx.out(f"#{number + 2} DONE {delay:.1f}s\n\n")
    digest = hashlib.sha256((text + repr(sorted(labels.items()))).encode()).hexdigest()
    ctx.out(f"#{total + 3} exporting to image\n#{total + 3} writing image sha256:{digest} done\n")
    ctx.out(f"#{total + 3} naming to docker.io/{tag} done\n#{total + 3} DONE 0.2s\n")
    full_tag = tag if ":" in tag else f"{tag}:latest"
    ctx.world.images[ctx.node_index][full_tag] = Image(full_tag, labels, f"sha256:{digest}")
    return 0


def _host_path(ctx: CommandContext, path: str) -> Path | None:
    """Where a path of the node's shell lives on this machine (only inside the home dir)."""
    home = ctx.world.homes[ctx.node_index]
    resolved = ctx.resolve(path)
    relative = resolved.removeprefix(ctx.home()).lstrip("/") if resolved.startswith("/") else path
    if resolved.startswith("/") and not resolved.startswith(ctx.home()):
        return None
    target = (home / relative).resolve()
    return target if target.is_relative_to(home.resolve()) else None


async def run(ctx: CommandContext, sub: str, args: list[str]) -> int:
    """`docker run -d --name NAME [options] IMAGE`: only the options `_RUN_OPTIONS` knows."""
    detached = False
    options: list[tuple[str, str]] = []
    index = 0
    while index < len(args) and args[index].startswith("-"):
        flag = args[index]
        if flag == "-d":
            detached = True
        elif flag in _RUN_OPTIONS and index + 1 < len(args):
            value = args[index + 1]
            if not _RUN_OPTIONS[flag](value):
                ctx.err(f'invalid argument "{value}" for "{flag}" flag\n')
                return 125
            options.append((flag, value))
            index += 1
        else:
            ctx.err(f"unknown flag: {flag}\nSee 'docker run --help'.\n")
            return 125
        index += 1
    rest = args[index:]
    named = dict(options)
    if not detached or len(rest) != 1 or "--name" not in named:
        ctx.err("docker: this node runs containers only as `docker run -d --name N ... IMAGE`\n")
        return 125
    image_name = rest[0] if ":" in rest[0] else f"{rest[0]}:latest"
    image = ctx.world.images[ctx.node_index].get(image_name)
    if image is None:
        ctx.err(
            f"Unable to find image '{rest[0]}' locally\n"
            f"docker: Error response from daemon: pull access denied for {rest[0]}.\n"
        )
        return 125
    if ("--memory" in named) != ("--memory-swap" in named):
        ctx.err("docker: --memory and --memory-swap go together on this node.\n")
        return 125
    if "--memory" in named and size_bytes(named["--memory-swap"]) < size_bytes(named["--memory"]):
        ctx.err(
            "docker: Error response from daemon: Minimum memoryswap limit should be larger "
            "than memory limit, see usage.\n"
        )
        return 125
    name = named["--name"]
    existing = ctx.world.containers.get(name)
    if existing is not None and not existing.removed:
        ctx.err(
            f'docker: Error response from daemon: Conflict. The container name "/{name}" is '
            "already in use. You have to remove (or rename) that container to be able to "
            "reuse that name.\n"
        )
        return 125
    flags = [part for pair in options for part in pair]
    if existing is None:
        existing = Container(name, image.tag, ctx.node_index, "python -m parakeet_server")
        existing.state = "created"
        ctx.world.containers[name] = existing
    elif existing.node_index != ctx.node_index:
        ctx.err(f"docker: this simulated cluster runs {name} on another node only.\n")
        return 125
    existing.removed = False
    existing.image = image.tag
    existing.labels = dict(image.labels)
    existing.run_flags = flags
    await ctx.world.docker.start(existing)
    ctx.out(hashlib.sha256(f"{name}{image.id}".encode()).hexdigest() + "\n")
    return 0


async def rm(ctx: CommandContext, sub: str, args: list[str]) -> int:
    """`docker rm [-f] NAME...`."""
    force = any(arg in ("-f", "--force") for arg in args)
    names = [arg for arg in args if not arg.startswith("-")]
    if not names:
        ctx.err('"docker rm" requires at least 1 argument.\n')
        return 1
    code = 0
    for name in names:
        container = ctx.world.container_on(ctx.node_index, name)
        if container is None:
            ctx.err(f"Error response from daemon: No such container: {name}\n")
            code = 1
            continue
        if container.running and not force:
            ctx.err(
                f'Error response from daemon: cannot remove container "/{name}": container '
                "is running: stop the container before removing or force remove\n"
            )
            code = 1
            continue
        if container.running:
            container.mark_exited(137)  # SIGKILL
        container.removed = True
        ctx.out(f"{name}\n")
    return code
