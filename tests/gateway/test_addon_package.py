"""The add-on folder is a complete, self-consistent Supervisor add-on."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import yaml

from spark_gateway import __version__
from spark_gateway.config import OPTIONS_SCHEMA, config_from_options, load_config
from tests.paths import REPO

ADDON = REPO / "addon"
ROOT = ADDON.parent


def manifest() -> dict[str, object]:
    return yaml.safe_load((ADDON / "config.yaml").read_text())


def test_manifest_required_fields() -> None:
    config = manifest()
    for key in ("name", "version", "slug", "description", "arch"):
        assert config[key], key
    assert config["version"] == __version__
    assert config["arch"] == ["aarch64", "amd64"]
    assert config["discovery"] == ["spark_control"]
    assert config["homeassistant_api"] is True
    assert config["ports"] == {"8080/tcp": 8080}
    assert "8080/tcp" in config["ports_description"]  # type: ignore[operator]


def test_default_options_load_into_the_gateway() -> None:
    config = config_from_options(manifest()["options"])  # type: ignore[arg-type]
    assert config.port == 8080
    assert config.default_speech_format == "mp3"
    assert config.auth_required
    assert config.api_keys == ()  # a key is generated on first start


def test_schema_and_translations_cover_the_same_options() -> None:
    config = manifest()
    schema = config["schema"]
    options = config["options"]
    assert isinstance(schema, dict)
    assert isinstance(options, dict)
    assert set(options) <= set(schema)
    known = {str(key.schema) for key in OPTIONS_SCHEMA.schema}
    assert set(schema) <= known, set(schema) - known  # every UI option is read by the gateway
    translations = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text())
    assert set(translations["configuration"]) == set(schema)
    assert set(translations["network"]) == set(config["ports"])  # type: ignore[arg-type]


def test_dockerfile_copies_only_from_the_addon_folder() -> None:
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert re.search(r"^ARG BUILD_FROM=ghcr\.io/home-assistant/base-python:", dockerfile, re.M)
    assert "FROM ${BUILD_FROM}" in dockerfile
    copies = [
        shlex.split(line)[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY")
    ]
    assert copies
    for sources in copies:
        for source in sources:
            assert not source.startswith(("/", "..")), source
            assert (ADDON / source).exists(), source


def test_start_script_runs_the_gateway_with_discovery() -> None:
    run = ADDON / "run.sh"
    assert os.access(run, os.X_OK)
    text = run.read_text()
    assert text.startswith("#!/usr/bin/with-contenv bashio")
    assert "python3 -m spark_gateway --config /data/options.json --announce" in text


def test_requirements_are_pinned_like_the_test_environment() -> None:
    test_pins = dict(
        line.split("==")
        for line in (ROOT / "requirements_test.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    test_pins = {name.lower(): version for name, version in test_pins.items()}
    for line in (ADDON / "requirements.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, version = line.split("==")
        if name.lower() in test_pins:
            assert test_pins[name.lower()] == version, name


def test_docs_and_images_exist() -> None:
    for name in ("DOCS.md", "README.md", "CHANGELOG.md", "icon.png", "logo.png"):
        assert (ADDON / name).stat().st_size > 100, name
    assert (ADDON / "icon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert __version__ in (ADDON / "CHANGELOG.md").read_text()
    # Supervisor treats every config.yaml/json in the repo as an add-on: only ours exists.
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
        found += [
            Path(folder) / f for f in files if f in ("config.yaml", "config.yml", "config.json")
        ]
    assert found == [ADDON / "config.yaml"]


def test_every_option_is_in_the_documentation() -> None:
    """DOCS.md's options table names every option the add-on's Configuration tab offers."""
    schema = yaml.safe_load((ADDON / "config.yaml").read_text())["schema"]
    docs = (ADDON / "DOCS.md").read_text()
    table = docs[docs.index("\n## Options\n") : docs.index("\n## API\n")]
    assert [name for name in schema if f"`{name}`" not in table] == []


def test_standalone_example_config_loads() -> None:
    config = load_config(ADDON / "gateway.example.yaml")
    assert config.port == 8080
    assert config.vllm_url == "http://192.168.1.50:8888"
    assert config.voice_aliases["narrator"] == "Magpie-Multilingual.EN-US.Jason"
    assert config.voice_aliases["alloy"]  # built-in OpenAI names stay
