"""The spark-vllm-docker checkout on the head node: local commits, upstream commits, failures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Subjects of upstream commits (cycled), in the style of eugr/spark-vllm-docker's history.
_SUBJECTS = (
    "Bump vLLM to the latest nightly wheel",
    "launch-cluster.sh: wait for Ray workers before exec",
    "Add --solo mode for single-node models",
    "build-and-copy.sh: copy the image over the ConnectX link",
    "Dockerfile: pin flashinfer for SM121",
    "Fix NCCL socket interface detection on GB10",
    "README: document the -n host list",
    "Enable fastsafetensors in the base image",
)
BASE_COMMITS = 120  # commits the checkout had when it was cloned


def commit_sha(number: int) -> str:
    """The full hash of the n-th commit of the (linear) history."""
    return hashlib.sha1(f"spark-vllm-docker#{number}".encode(), usedforsecurity=False).hexdigest()


def commit_subject(number: int) -> str:
    return _SUBJECTS[number % len(_SUBJECTS)]


@dataclass
class RepoState:
    """Local HEAD is commit `position`; upstream is `behind` commits further on.

    `fetch_fails` makes `git fetch` fail as without network, `dirty` makes `git pull` refuse
    (local changes), `build_fails` makes `./build-and-copy.sh -c` fail part-way.
    """

    behind: int = 0
    position: int = BASE_COMMITS
    build_fails: bool = False
    fetch_fails: bool = False
    dirty: bool = False

    @property
    def head(self) -> str:
        return commit_sha(self.position)

    @property
    def upstream(self) -> str:
        return commit_sha(self.position + self.behind)

    def pull(self) -> None:
        self.position += self.behind
        self.behind = 0
