"""Simulated GPU cluster for tests and the demo: real SSH nodes and real HTTP fakes on 127.0.0.1.

    from tests.sim import SimCluster, SimConfig
    async with SimCluster(SimConfig(authorized_keys=[public_line])) as sim:
        sim.nodes[0].ssh_port, sim.vllm.url, sim.faults.wedge("parakeet"), ...

See docs/simulator.md for what each fake reproduces and where it differs from the real thing.
"""

from tests.sim.cluster import SimCluster
from tests.sim.config import SimConfig
from tests.sim.keys import generate_client_key

__all__ = ["SimCluster", "SimConfig", "generate_client_key"]
