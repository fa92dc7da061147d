"""The spark-vllm-docker checkout on the head node: how far behind upstream, and what changed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SparkError

_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class CommitSummary:
    """One upstream commit not yet in the checkout."""

    short: str
    subject: str


@dataclass(frozen=True, slots=True)
class SoftwareUpdate:
    """Result of an update check: local and upstream commit, and the commits between."""

    installed: str
    latest: str
    behind: int
    commits: tuple[CommitSummary, ...]  # newest first, at most UPDATE_LOG_LIMIT

    @property
    def release_notes(self) -> str:
        """Markdown list of the commit subjects (what HA's update dialog shows)."""
        lines = [f"- `{commit.short}` {commit.subject}" for commit in self.commits]
        if self.behind > len(self.commits):
            lines.append(f"- … and {self.behind - len(self.commits)} older commits")
        return "\n".join(lines)


def parse_update_check(output: str) -> SoftwareUpdate:
    """Parse the output of `commands.update_check`."""
    lines = output.splitlines()
    try:
        installed, latest, count = (line.strip() for line in lines[:3])
        behind = int(count)
    except ValueError as err:
        raise SparkError(f"unexpected update check output: {output[:200]!r}") from err
    if not (_SHA.match(installed) and _SHA.match(latest)):
        raise SparkError(f"unexpected update check output: {output[:200]!r}")
    commits = tuple(
        CommitSummary(short, subject)
        for short, _, subject in (line.partition(" ") for line in lines[3:] if line.strip())
    )
    return SoftwareUpdate(installed=installed, latest=latest, behind=behind, commits=commits)
