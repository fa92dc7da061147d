"""Builders for every remote command (see docs/remote-commands.md).

A command is one or more argv lists joined by `&&`, optionally run inside a directory.
Every argument is validated first and quoted with `shlex.join`; the only shell syntax we
ever emit is `cd <dir> &&` and the `&&` between steps.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from .errors import InvalidInput
from .service_keys import DEFAULT_CONTAINERS, VLLM
from .validation import (
    validate_container,
    validate_host,
    validate_path,
    validate_port,
    validate_repo_id,
)

if TYPE_CHECKING:
    from .catalog import ModelEntry

type DockerAction = Literal["start", "stop", "restart"]
DOCKER_ACTIONS: tuple[DockerAction, ...] = ("start", "stop", "restart")

LAUNCH_SCRIPT = "./launch-cluster.sh"
VLLM_CONTAINER = DEFAULT_CONTAINERS[VLLM]
NVIDIA_SMI_FIELDS = (
    "index",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "enforced.power.limit",  # the ceiling the driver holds the draw under ([N/A] on a GB10)
)

_DURATION_RE = re.compile(r"^\d{1,9}(\.\d{1,6})?[smh]$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """One remote command line: `[cd <cwd> &&] step1 [&& step2 ...]`."""

    steps: tuple[tuple[str, ...], ...]
    cwd: str | None = None

    @classmethod
    def of(cls, argv: Sequence[str], cwd: str | None = None) -> RemoteCommand:
        """A single-step command."""
        return cls((tuple(argv),), cwd)

    def render(self) -> str:
        """The exact string sent over SSH."""
        parts = [shlex.join(step) for step in self.steps]
        if self.cwd is not None:
            parts.insert(0, f"cd {quote_path(self.cwd)}")
        return " && ".join(parts)

    def __str__(self) -> str:
        return self.render()


def quote_path(path: str) -> str:
    """Quote a validated path, leaving a leading `~/` unquoted so the shell expands it."""
    path = validate_path(path)
    if path == "~":
        return "~"
    if path.startswith("~/"):
        rest = path[2:]
        return "~/" + shlex.quote(rest) if rest else "~/"
    return shlex.quote(path)


def probe() -> RemoteCommand:
    """Harmless command used to validate a node: kernel name, release and machine."""
    return RemoteCommand.of(["uname", "-srm"])


def docker_action(action: DockerAction, container: str) -> RemoteCommand:
    """`docker start|stop|restart <container>`."""
    if action not in DOCKER_ACTIONS:
        raise InvalidInput("action", f"must be one of {', '.join(DOCKER_ACTIONS)}")
    return RemoteCommand.of(["docker", action, validate_container(container)])


def docker_ps() -> RemoteCommand:
    """Every container, one JSON object per line."""
    return RemoteCommand.of(["docker", "ps", "-a", "--format", "{{json .}}"])


def docker_top(container: str) -> RemoteCommand:
    """`docker top <container>`: the processes running in it, in `ps -ef` columns."""
    return RemoteCommand.of(["docker", "top", validate_container(container)])


def docker_inspect(container: str) -> RemoteCommand:
    """`docker inspect <container>` (a JSON array)."""
    return RemoteCommand.of(["docker", "inspect", validate_container(container)])


def docker_logs(
    container: str,
    *,
    follow: bool,
    since: str | datetime | None = None,
    tail: int | Literal["all"] | None = None,
) -> RemoteCommand:
    """`docker logs [-f] [--since S] [--tail N] <container>`.

    `since` is a duration (`10m`), an RFC 3339 time string, or an aware datetime.
    """
    argv = ["docker", "logs"]
    if follow:
        argv.append("-f")
    if since is not None:
        argv += ["--since", _since_text(since)]
    if tail is not None:
        if tail != "all" and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
            raise InvalidInput("tail", "must be a non-negative number or 'all'")
        argv += ["--tail", str(tail)]
    argv.append(validate_container(container))
    return RemoteCommand.of(argv)


def _since_text(since: str | datetime) -> str:
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise InvalidInput("since", "needs a timezone")
        return since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if not (_DURATION_RE.fullmatch(since) or _RFC3339_RE.fullmatch(since)):
        raise InvalidInput("since", f"not a duration or RFC 3339 time: {since!r}")
    return since


def nvidia_smi_query() -> RemoteCommand:
    """GPU stats as CSV without header or units (parse with `gpu.parse_nvidia_smi`)."""
    return RemoteCommand.of(
        [
            "nvidia-smi",
            "--query-gpu=" + ",".join(NVIDIA_SMI_FIELDS),
            "--format=csv,noheader,nounits",
        ]
    )


def hostname_query() -> RemoteCommand:
    """The node's host name (`uname -n`), the name its owner knows it by."""
    return RemoteCommand.of(["uname", "-n"])


def gpu_identity_query() -> RemoteCommand:
    """Each GPU's model name and driver version as CSV (parse with `node_info`)."""
    return RemoteCommand.of(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
    )


def meminfo_read() -> RemoteCommand:
    """System memory, for GPUs that share it (GB10 reports `[N/A]` framebuffer memory)."""
    return RemoteCommand.of(["cat", "/proc/meminfo"])


def launch_model(
    entry: ModelEntry, *, port: int, nodes: Sequence[str], repo_path: str
) -> RemoteCommand:
    """Start vLLM detached with the entry's flags.

    `nodes` are the hosts of the cluster (head first); a "cluster" entry runs on all of
    them with `-n`, a "solo" one runs on the head alone with `--solo`.
    """
    argv = [LAUNCH_SCRIPT]
    if entry.mode == "cluster":
        hosts = [validate_host(host, "nodes") for host in nodes]
        if len(hosts) < 2:
            raise InvalidInput("nodes", f"{entry.key} runs across nodes; the cluster has one")
        argv += ["-n", ",".join(hosts)]
    else:
        argv.append("--solo")
    argv += [
        "-d",
        "exec",
        "vllm",
        "serve",
        validate_repo_id(entry.repo_id),
        "--port",
        str(validate_port(port)),
        "--host",
        "0.0.0.0",
        "--max-model-len",
        str(entry.max_model_len),
        "--gpu-memory-utilization",
        f"{entry.gpu_memory_utilization:g}",
    ]
    if entry.prefix_caching:
        argv.append("--enable-prefix-caching")
    if entry.fp8_kv_cache:
        argv += ["--kv-cache-dtype", "fp8"]
    if entry.fastsafetensors:
        argv += ["--load-format", "fastsafetensors"]
    argv += ["-tp", str(entry.tensor_parallel)]
    argv += list(entry.extra_args)  # from the fixed list EXTRA_ARGS (checked by ModelEntry)
    return RemoteCommand.of(argv, validate_path(repo_path, "repo_path"))


def stop_cluster(repo_path: str) -> RemoteCommand:
    """Stop vLLM on every node (`launch-cluster.sh stop`)."""
    return RemoteCommand.of([LAUNCH_SCRIPT, "stop"], validate_path(repo_path, "repo_path"))


def cluster_status(repo_path: str) -> RemoteCommand:
    """`launch-cluster.sh status`: one `vllm_node on <host>: <state>` line per node."""
    return RemoteCommand.of([LAUNCH_SCRIPT, "status"], validate_path(repo_path, "repo_path"))


UPDATE_LOG_LIMIT = 50  # commit subjects an update check lists at most


def update_check(repo_path: str) -> RemoteCommand:
    """Fetch, then print HEAD, upstream, how many commits apart, and the newest subjects.

    Output: two 40-hex lines, an integer line, then up to UPDATE_LOG_LIMIT `<short> <subject>`
    lines (parse with `updates.parse_update_check`).
    """
    return RemoteCommand(
        (
            ("git", "fetch", "--quiet"),
            ("git", "rev-parse", "HEAD", "@{u}"),
            ("git", "rev-list", "--count", "HEAD..@{u}"),
            ("git", "log", f"--max-count={UPDATE_LOG_LIMIT}", "--format=%h %s", "HEAD..@{u}"),
        ),
        validate_path(repo_path, "repo_path"),
    )


def update_apply(repo_path: str) -> RemoteCommand:
    """Fast-forward the checkout and rebuild/copy the image (streamed; last line `Done.`)."""
    return RemoteCommand(
        (("git", "pull", "--ff-only"), ("./build-and-copy.sh", "-c")),
        validate_path(repo_path, "repo_path"),
    )


def hf_download(repo_id: str, *, dry_run: bool = False) -> RemoteCommand:
    """Download a model snapshot into the node's Hugging Face cache (a re-run resumes).

    With `dry_run`, only print what would be downloaded and its size. A download runs with
    `TQDM_POSITION=-1`: huggingface_hub hides its bytes bar when stderr is no terminal (as over
    SSH) and draws it anyway with that variable set (huggingface_hub#2698), so progress can be
    read from it.
    """
    argv = ["hf", "download", validate_repo_id(repo_id)]
    if dry_run:
        return RemoteCommand.of([*argv, "--dry-run"])
    return RemoteCommand.of(["env", "TQDM_POSITION=-1", *argv])


def hf_cache_remove(repo_id: str) -> RemoteCommand:
    """Delete a model (complete or partial) from the node's Hugging Face cache."""
    return RemoteCommand.of(["hf", "cache", "rm", f"model/{validate_repo_id(repo_id)}", "--yes"])


def disk_space() -> RemoteCommand:
    """Size and free bytes of the filesystem holding the login directory (where the Hugging
    Face cache lives); `.` because a quoted `~` would not expand."""
    return RemoteCommand.of(["df", "--output=size,avail", "-B1", "."])
