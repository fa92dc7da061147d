"""Start Home Assistant's own `hass` entry point on the Python this project pins.

HA 2026.2.3 declares Python >= 3.13.2 but runs on 3.13.0 (the version available on this project's
machines; the test suite runs on it too). Its entry point refuses older patch releases, so the
demo relaxes only that check and then hands over to HA unchanged.
"""

from __future__ import annotations

import sys

import homeassistant.__main__ as ha_main

if __name__ == "__main__":
    if sys.version_info[:2] == ha_main.REQUIRED_PYTHON_VER[:2]:
        ha_main.REQUIRED_PYTHON_VER = sys.version_info[:3]
    sys.exit(ha_main.main())
