"""Parse `docker ps -a --format '{{json .}}'`, `docker inspect` and `docker top` output."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import SparkError


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """One container as `docker ps` / `docker inspect` describe it."""

    name: str
    state: str  # running, exited, restarting, created, paused, dead
    status: str  # human text, e.g. "Up 2 hours"
    image: str
    restart_count: int | None = None
    exit_code: int | None = None
    started_at: str | None = None

    @property
    def running(self) -> bool:
        """Whether the container is up."""
        return self.state == "running"


def runs_vllm_server(docker_top: str) -> bool:
    """Whether `docker top` lists a vLLM server (`vllm serve ...`, as launch-cluster.sh starts
    it) among a container's processes; its header and the container's own `sleep infinity`
    do not count."""
    processes = docker_top.splitlines()[1:]
    return any("vllm serve " in f"{line} " for line in processes)


def parse_docker_ps(text: str) -> dict[str, ContainerInfo]:
    """Containers by name from one JSON object per line."""
    containers: dict[str, ContainerInfo] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
            names = str(row["Names"]).split(",")
            info = ContainerInfo(
                name=names[0],
                state=str(row["State"]),
                status=str(row.get("Status", "")),
                image=str(row.get("Image", "")),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise SparkError(f"unexpected docker ps line: {line[:200]!r}") from err
        for name in names:
            containers[name] = info
    return containers


def parse_docker_inspect(text: str) -> ContainerInfo:
    """The single container of a `docker inspect <name>` answer."""
    try:
        items: Any = json.loads(text)
        item = items[0]
        state = item["State"]
        return ContainerInfo(
            name=str(item["Name"]).lstrip("/"),
            state=str(state["Status"]),
            status=str(state["Status"]),
            image=str(item.get("Config", {}).get("Image", "")),
            restart_count=int(item.get("RestartCount", 0)),
            exit_code=int(state.get("ExitCode", 0)),
            started_at=state.get("StartedAt"),
        )
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise SparkError(f"unexpected docker inspect output: {text[:200]!r}") from err
