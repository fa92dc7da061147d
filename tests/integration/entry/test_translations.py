"""Every text the HA glue refers to exists in translations/en.json (custom integrations get
no strings.json compilation, so a missing key would show the raw key to the user)."""

from __future__ import annotations

import ast
import inspect
import json
import re

import yaml
from homeassistant import exceptions
from homeassistant.helpers.update_coordinator import UpdateFailed

from tests.paths import REPO

PACKAGE = REPO / "custom_components/spark_control"
EN = json.loads((PACKAGE / "translations/en.json").read_text())
# Every module of the HA glue (sparklib raises no translated errors).
OURS = sorted(path.name for path in PACKAGE.glob("*.py"))


def _source() -> str:
    return "\n".join((PACKAGE / name).read_text() for name in OURS)


def test_exception_keys_exist() -> None:
    """Every translation_key raised in an exception has a message."""
    source = _source()
    raised = set(re.findall(r'translation_key="([a-z_]+)"', source))
    raised |= set(re.findall(r'_invalid\(\s*"([a-z_]+)"', source))
    raised |= set(re.findall(r'invalid_input\(\s*"([a-z_]+)"', source))  # transcribe.py's helper
    entity_keys = {
        key for platform in EN["entity"].values() for key in platform
    }  # entity descriptions use translation_key too
    # Repair issues and selector option lists (SelectSelectorConfig) use translation_key too.
    known = set(EN["exceptions"]) | set(EN["issues"]) | entity_keys | set(EN["selector"])
    missing = raised - known
    assert not missing


def test_invalid_input_placeholders_fill_the_message() -> None:
    """Each `invalid_input(key, **placeholders)` gives exactly the placeholders its message
    shows: a missing one would show as `{file}`, an extra one is a fact the user never sees."""
    mismatched = []
    for name in OURS:
        for node in ast.walk(ast.parse((PACKAGE / name).read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "invalid_input"
                    and node.args and isinstance(node.args[0], ast.Constant)):  # fmt: skip
                continue
            message = EN["exceptions"][node.args[0].value]["message"]
            shown = set(re.findall(r"\{(\w+)\}", message))
            if shown != {keyword.arg for keyword in node.keywords}:
                mismatched.append(f"{name}:{node.lineno}: {node.args[0].value}")
    assert not mismatched


# Every error class of HA's whose message the user reads (actions, setup, coordinators).
HA_ERRORS = {
    name
    for name, value in vars(exceptions).items()
    if inspect.isclass(value) and issubclass(value, exceptions.HomeAssistantError)
} | {UpdateFailed.__name__}


def test_every_ha_error_is_translated() -> None:
    """Every HA error the glue builds (raised or returned for a caller to raise) carries our
    translation domain and a key, and no English message of its own."""
    untranslated = []
    for name in OURS:
        for node in ast.walk(ast.parse((PACKAGE / name).read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else None
            called = node.func.id if isinstance(node.func, ast.Name) else called
            if called not in HA_ERRORS:
                continue
            given = {keyword.arg: keyword.value for keyword in node.keywords}
            domain = given.get("translation_domain")
            if (
                node.args
                or "translation_key" not in given
                or not (isinstance(domain, ast.Name) and domain.id == "DOMAIN")
            ):
                untranslated.append(f"{name}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert not untranslated


def test_config_flow_errors_and_aborts_exist() -> None:
    """Every error and abort reason the flows produce has text."""
    source, options_source = (
        (PACKAGE / "config_flow.py").read_text().split("class SparkControlOptionsFlow", 1)
    )
    error_pattern = r'errors\[[^\]]+\] = "([a-z_]+)"'
    errors = set(re.findall(error_pattern, source))
    errors |= {f"invalid_{field}" for field in ("nodes", "ssh_user", "ssh_port", "repo_path")}
    assert errors <= set(EN["config"]["error"])
    assert set(re.findall(error_pattern, options_source)) <= set(EN["options"]["error"])
    aborts = set(re.findall(r'async_abort\(reason="([a-z_]+)"\)', source))
    assert aborts <= set(EN["config"]["abort"])


def test_every_action_and_field_is_described() -> None:
    """services.yaml and the translations describe the same actions and fields."""
    services = yaml.safe_load((PACKAGE / "services.yaml").read_text())
    for action, spec in services.items():
        described = EN["services"][action]
        assert described["name"]
        assert set(spec.get("fields", {})) == set(described["fields"])
