"""The fuzz suite reuses the gateway's and the bridges' fixtures."""

from tests.addon.conftest import (  # noqa: F401
    fake_ha,
    gateway,
    short_wav,
    sim,
    start_gateway,
)
from tests.voice.conftest import running  # noqa: F401
