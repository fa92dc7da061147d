"""The add-on repository passes the Supervisor's own schemas (2026.02 and the newest release),
builds on old Supervisors, and its URLs agree with the integration's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml

from tests.integration.validators.supervisor_rules import (
    SCHEMA_ADDON_TRANSLATIONS,
    SCHEMA_BUILD_CONFIG,
    SCHEMA_REPOSITORY_CONFIG,
    addon_config_schema,
)
from tests.paths import REPO

ROOT = REPO
ADDON = ROOT / "addon"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return dict(_yaml(ADDON / "config.yaml"))


@pytest.mark.parametrize("supervisor", ["2026.02", "newest"])
def test_config_yaml_passes_the_schema(config: dict[str, Any], supervisor: str) -> None:
    addon_config_schema(supervisor)(config)


def test_schema_catches_what_the_supervisor_would_skip(config: dict[str, Any]) -> None:
    """Not vacuous: a made-up schema type, an unknown key and a 32-bit arch on the newest."""
    schema = addon_config_schema("newest")
    for broken in (
        {**config, "schema": {**config["schema"], "log_level": "str=info"}},
        {**config, "snapshot_exclude": ["*.wav"]},
        {**config, "arch": ["armv7"]},
        {**config, "watchdog": "http://localhost:8080/health"},
    ):
        with pytest.raises(vol.Invalid):
            schema(broken)


def test_options_and_schema_agree(config: dict[str, Any]) -> None:
    """Every default in `options` is a schema key, and every required key has a default."""
    schema, options = config["schema"], config["options"]
    assert set(options) <= set(schema)
    required = {
        key for key, value in schema.items() if isinstance(value, str) and not value.endswith("?")
    }
    assert required <= set(options)


def test_translations(config: dict[str, Any]) -> None:
    translations = _yaml(ADDON / "translations" / "en.yaml")
    SCHEMA_ADDON_TRANSLATIONS(translations)
    assert set(translations["configuration"]) == set(config["schema"])
    assert set(translations["network"]) == set(config["ports"])
    assert set(config["ports_description"]) == set(config["ports"])


def test_build_yaml_gives_old_supervisors_a_python_base(config: dict[str, Any]) -> None:
    """Supervisors before 2026.04 pass BUILD_FROM; without build.yaml it is {arch}-base (no
    Python). Newer ones use the Dockerfile's default: the same Python and Alpine."""
    build = _yaml(ADDON / "build.yaml")
    SCHEMA_BUILD_CONFIG(build)
    assert set(build["build_from"]) == set(config["arch"])
    dockerfile = (ADDON / "Dockerfile").read_text()
    default = next(
        line.split("=", 1)[1]
        for line in dockerfile.splitlines()
        if line.startswith("ARG BUILD_FROM")
    )
    tag = default.rsplit(":", 1)[1]
    for arch, image in build["build_from"].items():
        assert image == f"ghcr.io/home-assistant/{arch}-base-python:{tag}"


def test_repository_yaml_and_urls_agree(config: dict[str, Any]) -> None:
    repository = _yaml(ROOT / "repository.yaml")
    SCHEMA_REPOSITORY_CONFIG(repository)
    manifest = json.loads((ROOT / "custom_components/spark_control/manifest.json").read_text())
    assert config["url"] == repository["url"] == manifest["documentation"]
    assert manifest["issue_tracker"] == f"{repository['url']}/issues"
    assert manifest["domain"] in config["discovery"]


def test_only_the_addon_has_a_config_file() -> None:
    """The Supervisor finds add-ons by `**/config.(json|yaml|yml)`, skipping dot folders."""
    found = {
        path.relative_to(ROOT).as_posix()
        for pattern in ("config.json", "config.yaml", "config.yml")
        for path in ROOT.glob(f"**/{pattern}")
        if not any(
            part.startswith(".") or part == "rootfs" for part in path.relative_to(ROOT).parts
        )
    }
    assert found == {"addon/config.yaml"}
