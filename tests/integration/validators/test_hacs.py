"""What the HACS action checks in a repository we control: hacs.json and the integration
manifest against HACS's own schemas (hacs/integration custom_components/hacs/utils/validate.py:
HACS_MANIFEST_JSON_SCHEMA, INTEGRATION_MANIFEST_JSON_SCHEMA), brand assets, and a README."""

from __future__ import annotations

import json
import struct

import voluptuous as vol
from awesomeversion import AwesomeVersion
from homeassistant.helpers.config_validation import url as url_validator

from tests.paths import REPO

ROOT = REPO
INTEGRATION = ROOT / "custom_components" / "spark_control"

HACS_MANIFEST_JSON_SCHEMA = vol.Schema(
    {
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
        vol.Required("name"): str,
    },
    extra=vol.PREVENT_EXTRA,
)
INTEGRATION_MANIFEST_JSON_SCHEMA = vol.Schema(
    {
        vol.Required("codeowners"): list,
        vol.Required("documentation"): url_validator,
        vol.Required("domain"): str,
        vol.Required("issue_tracker"): url_validator,
        vol.Required("name"): str,
        vol.Required("version"): vol.Coerce(AwesomeVersion),
    },
    extra=vol.ALLOW_EXTRA,
)


def test_hacs_json() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text())
    HACS_MANIFEST_JSON_SCHEMA(hacs)
    # The oldest Home Assistant the suite runs on (scripts/test's compatibility run).
    requirements = (ROOT / "requirements_test.txt").read_text()
    assert "pytest-homeassistant-custom-component==0.13.316" in requirements  # HA 2026.2.3
    assert AwesomeVersion(hacs["homeassistant"]) <= AwesomeVersion("2026.2.3")
    assert AwesomeVersion(hacs["homeassistant"]) >= AwesomeVersion("2026.2.0")


def test_integration_manifest_for_hacs() -> None:
    INTEGRATION_MANIFEST_JSON_SCHEMA(json.loads((INTEGRATION / "manifest.json").read_text()))
    # HACS finds the integration as the only folder under custom_components/.
    folders = [
        p.name
        for p in (ROOT / "custom_components").iterdir()
        if p.is_dir() and not p.name.startswith("__")
    ]
    assert folders == ["spark_control"]


def test_brand_icon() -> None:
    """HACS (and HA >= 2026.3) read custom_components/<domain>/brand/icon.png: a square PNG,
    256 px (icon@2x.png 512 px is optional)."""
    data = (INTEGRATION / "brand" / "icon.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (256, 256)


def test_readme_states_the_supported_range() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "2026.2" in readme
    assert "2026.11" in readme
