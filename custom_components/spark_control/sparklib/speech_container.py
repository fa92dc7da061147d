"""The GPU speech container (`parakeet_container/`): its build context as shipped with the
integration, the deploy over SSH (SFTP upload, `docker build`, `docker run`), its version.

HACS installs only the integration's folder, so the build context travels inside it as
`speech_container/`, a byte-for-byte copy of `parakeet_container/` (a test keeps them equal;
`scripts/sync_speech_container.py` refreshes it). The version is a digest of that content:
the image is labelled with it, so the installed container says which context it came from.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path

from .commands import RemoteCommand, docker_inspect
from .errors import CommandFailed, InvalidInput, SparkError
from .ssh import SshNode
from .validation import validate_container

SPEECH_CONTEXT_DIR = Path(__file__).parent.parent / "speech_container"
CONTEXT_LABEL = "io.spark-control.context"
IMAGE_REPOSITORY = "spark-control/parakeet"
RUN_ARGS_FILE = "docker-run.args"
REMOTE_PARENT = "spark-control"
# Files of the context: the Dockerfile, its inputs and the run options (no docs, no tests).
_CONTEXT_GLOBS = ("Dockerfile", "requirements.txt", "run.sh", RUN_ARGS_FILE)
_CONTEXT_PACKAGE = "parakeet_server"
# `docker run` options allowed in docker-run.args, with a check of the value.
_RUN_OPTION_VALUES: dict[str, Callable[[str], object]] = {
    "--gpus": re.compile(r"^(all|\d{1,2})$").fullmatch,
    "--restart": re.compile(r"^(no|always|unless-stopped|on-failure)$").fullmatch,
    "--memory": re.compile(r"^\d{1,6}[kmg]$").fullmatch,
    "--memory-swap": re.compile(r"^\d{1,6}[kmg]$").fullmatch,
    "--shm-size": re.compile(r"^\d{1,6}[kmg]$").fullmatch,
    "-p": re.compile(r"^\d{1,5}:\d{1,5}$").fullmatch,
    "-v": re.compile(r"^[A-Za-z0-9_.-]{1,64}:/[A-Za-z0-9_./-]{0,128}$").fullmatch,
    "-e": re.compile(r"^[A-Z_][A-Z0-9_]{0,63}=[A-Za-z0-9_./:@-]{0,256}$").fullmatch,
}


@dataclass(frozen=True, slots=True)
class BuildContext:
    """The files to ship (relative path, content), their digest and the run options."""

    files: tuple[tuple[str, bytes], ...]
    digest: str  # 12 hex characters of sha256 over the paths and contents
    run_options: tuple[str, ...]

    @property
    def image(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.digest}"

    @property
    def remote_dir(self) -> str:
        return f"{REMOTE_PARENT}/parakeet-{self.digest}"


def context_files(root: Path) -> list[tuple[str, bytes]]:
    """The context's files under `root`, sorted (blocking I/O: call it in an executor)."""
    paths = [root / name for name in _CONTEXT_GLOBS if (root / name).is_file()]
    paths += sorted((root / _CONTEXT_PACKAGE).glob("*.py"))
    return sorted((path.relative_to(root).as_posix(), path.read_bytes()) for path in paths)


def parse_run_options(text: str) -> tuple[str, ...]:
    """The `docker run` options of docker-run.args, validated; InvalidInput on anything else.

    The memory cap must forbid swap: `--memory-swap` equal to `--memory`.
    """
    options: list[str] = []
    named: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        if len(words) != 2 or words[0] not in _RUN_OPTION_VALUES:
            raise InvalidInput(RUN_ARGS_FILE, f"unsupported option line: {line!r}")
        flag, value = words
        if not _RUN_OPTION_VALUES[flag](value):
            raise InvalidInput(RUN_ARGS_FILE, f"bad value for {flag}: {value!r}")
        options += words
        named[flag] = value
    if "--memory" not in named or named.get("--memory-swap") != named["--memory"]:
        raise InvalidInput(RUN_ARGS_FILE, "--memory must be set and --memory-swap equal to it")
    return tuple(options)


def load_build_context(root: Path = SPEECH_CONTEXT_DIR) -> BuildContext:
    """Read the shipped context (blocking I/O: call it in an executor)."""
    files = context_files(root)
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    run_args = dict(files).get(RUN_ARGS_FILE)
    if run_args is None:
        raise InvalidInput(RUN_ARGS_FILE, f"missing from {root}")
    return BuildContext(
        files=tuple(files),
        digest=digest.hexdigest()[:12],
        run_options=parse_run_options(run_args.decode()),
    )


def docker_build(context: BuildContext) -> RemoteCommand:
    """`docker build -t <image> --label <context label> <remote dir>`."""
    return RemoteCommand.of(
        [
            "docker",
            "build",
            "-t",
            context.image,
            "--label",
            f"{CONTEXT_LABEL}={context.digest}",
            context.remote_dir,
        ]
    )


def docker_remove(container: str) -> RemoteCommand:
    """`docker rm -f <container>` (stops it first)."""
    return RemoteCommand.of(["docker", "rm", "-f", validate_container(container)])


def docker_run(context: BuildContext, container: str) -> RemoteCommand:
    """`docker run -d --name <container> <options of docker-run.args> <image>`."""
    return RemoteCommand.of(
        [
            "docker",
            "run",
            "-d",
            "--name",
            validate_container(container),
            *context.run_options,
            context.image,
        ]
    )


async def installed_version(node: SshNode, container: str) -> str | None:
    """The context digest the container was built from; "" for a container not built by us
    (no label), None when there is no such container."""
    try:
        result = await node.run(docker_inspect(container), timeout=30)
    except CommandFailed as err:
        if "No such object" in err.stderr:
            return None
        raise
    try:
        labels = json.loads(result.stdout)[0]["Config"].get("Labels") or {}
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as err:
        raise SparkError(f"unexpected docker inspect output for {container}") from err
    return str(labels.get(CONTEXT_LABEL, ""))


async def deploy(node: SshNode, context: BuildContext, container: str) -> AsyncGenerator[str]:
    """Ship the context, build the image, replace the container; yields progress lines.

    Lines: `Uploading N files to <dir>`, the build's output, `Removing <container>`,
    `Starting <container>`. A failing step raises CommandFailed (its last lines in stderr).
    Waiting for the service's health is the caller's (it has the HTTP client).
    """
    yield f"Uploading {len(context.files)} files to {context.remote_dir}"
    await node.upload(context.files, context.remote_dir)
    stream = node.stream_lines(docker_build(context), check=True)
    try:
        async for line in stream:
            yield line
    finally:
        await stream.aclose()
    yield f"Removing {container}"
    await remove(node, container)
    yield f"Starting {container} from {context.image}"
    await node.run(docker_run(context, container), timeout=120)


async def remove(node: SshNode, container: str) -> None:
    """Remove the container (a missing one is fine)."""
    try:
        await node.run(docker_remove(container), timeout=120)
    except CommandFailed as err:
        if "No such container" not in err.stderr:
            raise
