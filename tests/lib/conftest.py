"""Fixtures of the sparklib tests: real sockets, a client key and a simulated cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from custom_components.spark_control.sparklib.keys import KeyPair, generate_keypair


@pytest.fixture(autouse=True)
def _real_sockets(socket_enabled: None) -> Iterator[None]:
    """Real loopback sockets (overrides the root fixture, whose generator never yields)."""
    return


@pytest.fixture(scope="session")
def client_key() -> KeyPair:
    """The key pair the library authenticates with (authorized on the simulated nodes)."""
    return generate_keypair()
