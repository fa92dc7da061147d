"""The fuzz suite reuses the gateway fixtures (gateway, simulator, fake HA)."""

from tests.addon.conftest import (  # noqa: F401
    fake_ha,
    gateway,
    short_wav,
    sim,
    start_gateway,
)
