"""What a command handler gets: the world, its node, output writers and a closed signal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.sim.node_storage import NodeStorage
from tests.sim.world import SimWorld


@dataclass
class CommandContext:
    world: SimWorld
    node_index: int
    out: Callable[[str], None]  # stdout
    err: Callable[[str], None]  # stderr
    closed: asyncio.Event  # set when the client closed the channel or the connection dropped
    cwd: str
    env: dict[str, str] = field(default_factory=dict)  # variables `env NAME=VALUE cmd` set

    @property
    def node_name(self) -> str:
        return self.world.node_names[self.node_index]

    @property
    def storage(self) -> NodeStorage:
        return self.world.storage[self.node_index]

    def home(self) -> str:
        return f"/home/{self.world.config.username}"

    def resolve(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            return self.home() + path[1:]
        return path

    @property
    def in_repo(self) -> bool:
        return self.cwd == self.resolve(self.world.config.repo_path)

    async def sleep_or_closed(self, seconds: float) -> bool:
        """Sleep; return True early if the channel closed meanwhile."""
        try:
            await asyncio.wait_for(self.closed.wait(), seconds)
        except TimeoutError:
            return False
        return True
