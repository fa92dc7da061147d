"""The hassfest checks that apply to a custom integration, applied to ours.

Home Assistant's `script.hassfest` is not in the `homeassistant` wheel (it lives only in the core
repository), so its rules for custom integrations are reimplemented here from the core source:
`script/hassfest/manifest.py` (CUSTOM_INTEGRATION_MANIFEST_SCHEMA, key order),
`dependencies.py` (ImportCollector, ALLOWED_USED_COMPONENTS), `services.py` (every action in
services.yaml has a translated name and description), `icons.py` (icons.json schema),
`translations.py` (strings schema: step/error/abort/entity/exceptions/issues/services keys) and
`config_flow.py` (config_flow: true ⇔ a config flow module). Each function returns the list of
problems, empty when the integration passes.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import voluptuous as vol
import yaml
from homeassistant.const import Platform

# script/hassfest/manifest.py
SUPPORTED_IOT_CLASSES = [
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
]
INTEGRATION_TYPES = ["device", "entity", "hardware", "helper", "hub", "service", "system"]
_VERSION = re.compile(r"^\d+(\.\d+)*([.-]?[a-z0-9]+)*$")  # awesomeversion's strategies, simplified


def _version(value: str) -> str:
    if not _VERSION.match(value):
        raise vol.Invalid(f"{value!r} is not a valid version")
    return value


CUSTOM_INTEGRATION_MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("domain"): str,
        vol.Required("name"): str,
        vol.Optional("integration_type", default="hub"): vol.In(INTEGRATION_TYPES),
        vol.Optional("config_flow"): bool,
        vol.Optional("mqtt"): [str],
        vol.Optional("zeroconf"): [vol.Any(str, dict)],
        vol.Optional("ssdp"): [dict],
        vol.Optional("bluetooth"): [dict],
        vol.Optional("homekit"): vol.Schema({vol.Optional("models"): [str]}),
        vol.Optional("dhcp"): [dict],
        vol.Optional("usb"): [dict],
        vol.Required("documentation"): vol.All(vol.Url(), vol.Match(r"^https://")),
        vol.Optional("issue_tracker"): vol.Url(),
        vol.Optional("quality_scale"): vol.In(["internal", "silver", "gold", "platinum"]),
        vol.Optional("requirements"): [str],
        vol.Optional("dependencies"): [str],
        vol.Optional("after_dependencies"): [str],
        vol.Required("codeowners"): [str],
        vol.Optional("loggers"): [str],
        vol.Optional("disabled"): str,
        vol.Optional("iot_class"): vol.In(SUPPORTED_IOT_CLASSES),
        vol.Optional("single_config_entry"): bool,
        vol.Optional("version"): vol.All(str, _version),
        vol.Optional("import_executor"): bool,
    }
)

# script/hassfest/dependencies.py
ALLOWED_USED_COMPONENTS = {
    *{platform.value for platform in Platform},
    "alert",
    "automation",
    "conversation",
    "default_config",
    "device_automation",
    "frontend",
    "group",
    "homeassistant",
    "input_boolean",
    "input_button",
    "input_datetime",
    "input_number",
    "input_select",
    "input_text",
    "media_source",
    "onboarding",
    "panel_custom",
    "persistent_notification",
    "person",
    "script",
    "shopping_list",
    "sun",
    "system_health",
    "system_log",
    "timer",
    "webhook",
    "websocket_api",
    "zone",
    "mjpeg",
    "stream",
}


def check_manifest(path: Path) -> list[str]:
    """manifest.py: schema, domain = folder, iot_class and version present, key order."""
    manifest = json.loads((path / "manifest.json").read_text())
    problems: list[str] = []
    try:
        CUSTOM_INTEGRATION_MANIFEST_SCHEMA(manifest)
    except vol.Invalid as err:
        problems.append(f"invalid manifest: {err}")
    if manifest.get("domain") != path.name:
        problems.append("domain does not match the folder name")
    if "iot_class" not in manifest:
        problems.append("missing iot_class")
    if not manifest.get("version"):
        problems.append("no 'version' key (required for custom integrations)")
    keys = list(manifest)
    order = {"domain": ".domain", "name": ".name"}
    if keys != sorted(keys, key=lambda key: order.get(key, key)):
        problems.append("manifest keys not sorted: domain, name, then alphabetical")
    return problems


def referenced_components(path: Path) -> dict[str, set[str]]:
    """dependencies.py ImportCollector: `homeassistant.components.X` imports, per file."""
    found: dict[str, set[str]] = {}
    for file in sorted(path.glob("**/*.py")):
        refs: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("homeassistant.components."):
                    refs.add(node.module.split(".")[2])
                elif node.module == "homeassistant.components":
                    refs.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                refs.update(
                    alias.name.split(".")[2]
                    for alias in node.names
                    if alias.name.startswith("homeassistant.components.")
                )
        found[str(file.relative_to(path))] = refs
    return found


def check_dependencies(path: Path) -> list[str]:
    """dependencies.py: every component imported is ours, allowed, a dependency, or a platform
    file of ours (e.g. diagnostics.py may import homeassistant.components.diagnostics)."""
    manifest = json.loads((path / "manifest.json").read_text())
    allowed = (
        ALLOWED_USED_COMPONENTS
        | set(manifest.get("dependencies", []))
        | set(manifest.get("after_dependencies", []))
        | {manifest["domain"]}
    )
    problems = []
    for file, refs in referenced_components(path).items():
        for ref in sorted(refs - allowed):
            if (path / f"{ref}.py").is_file() or (path / ref).is_dir():
                continue
            problems.append(
                f"{file}: using component {ref} but it's not in 'dependencies' "
                "or 'after_dependencies'"
            )
    for dep in manifest.get("dependencies", []):
        if dep in manifest.get("after_dependencies", []):
            problems.append(f"dependency {dep} is both in dependencies and after_dependencies")
    return problems


def check_config_flow(path: Path) -> list[str]:
    """config_flow.py: `config_flow: true` needs config_flow.py and config step strings."""
    manifest = json.loads((path / "manifest.json").read_text())
    has_module = (path / "config_flow.py").is_file()
    if manifest.get("config_flow") and not has_module:
        return ["config_flow is true but there is no config_flow.py"]
    if has_module and not manifest.get("config_flow"):
        return ["config_flow.py exists but the manifest lacks config_flow: true"]
    strings = json.loads((path / "translations" / "en.json").read_text())
    if manifest.get("config_flow") and "step" not in strings.get("config", {}):
        return ["config flow without config.step strings"]
    return []


_FLOW = vol.Schema(
    {
        vol.Optional("flow_title"): str,
        vol.Optional("step"): {
            str: {
                vol.Optional("title"): str,
                vol.Optional("description"): str,
                vol.Optional("data"): {str: str},
                vol.Optional("data_description"): {str: str},
                vol.Optional("menu_options"): {str: str},
                vol.Optional("menu_option_descriptions"): {str: str},
                vol.Optional("submit"): str,
                vol.Optional("sections"): {str: {str: vol.Any(str, {str: str})}},
            }
        },
        vol.Optional("error"): {str: str},
        vol.Optional("abort"): {str: str},
        vol.Optional("progress"): {str: str},
        vol.Optional("create_entry"): {str: str},
    }
)
_PLACEHOLDERS = {str: vol.Any(str, {str: str})}
STRINGS_SCHEMA = vol.Schema(
    {
        vol.Optional("title"): str,
        vol.Optional("config"): _FLOW,
        vol.Optional("options"): _FLOW,
        # hassfest's gen_data_entry_schema(subentry_flow=True): a subentry flow per type, with
        # the entry type's name and the "add" (and optional "reconfigure") button labels.
        vol.Optional("config_subentries"): {
            str: _FLOW.extend(
                {
                    vol.Required("entry_type"): str,
                    vol.Required("initiate_flow"): {
                        vol.Required("user"): str,
                        vol.Optional("reconfigure"): str,
                    },
                }
            )
        },
        vol.Optional("selector"): {str: {"options": {str: str}}},
        vol.Optional("entity"): {
            vol.In([platform.value for platform in Platform]): {
                str: {
                    vol.Optional("name"): str,
                    vol.Optional("state"): {str: str},
                    vol.Optional("state_attributes"): {
                        str: {vol.Optional("name"): str, vol.Optional("state"): {str: str}}
                    },
                    vol.Optional("unit_of_measurement"): str,
                }
            }
        },
        vol.Optional("exceptions"): {str: {vol.Required("message"): str}},
        vol.Optional("issues"): {
            str: vol.Any(
                {vol.Required("title"): str, vol.Optional("description"): str},
                {vol.Required("title"): str, vol.Required("fix_flow"): _FLOW},
            )
        },
        vol.Optional("services"): {
            str: {
                vol.Required("name"): str,
                vol.Required("description"): str,
                vol.Optional("fields"): {
                    str: {
                        vol.Required("name"): str,
                        vol.Required("description"): str,
                        vol.Optional("example"): str,
                    }
                },
                vol.Optional("sections"): {str: _PLACEHOLDERS},
            }
        },
        vol.Optional("device"): {str: {"name": str}},
        vol.Optional("system_health"): {"info": {str: str}},
    }
)


def check_translations(path: Path) -> list[str]:
    """translations.py: en.json follows the strings schema (custom integrations have no
    strings.json; hassfest validates translations/en.json instead)."""
    strings = json.loads((path / "translations" / "en.json").read_text())
    try:
        STRINGS_SCHEMA(strings)
    except vol.Invalid as err:
        return [f"translations/en.json: {err}"]
    return []


def check_services(path: Path) -> list[str]:
    """services.py: each action in services.yaml parses and has a translated name and
    description, and each of its fields too."""
    services = yaml.safe_load((path / "services.yaml").read_text()) or {}
    strings = json.loads((path / "translations" / "en.json").read_text()).get("services", {})
    problems = []
    for name, service in services.items():
        texts = strings.get(name)
        if not texts or not texts.get("name") or not texts.get("description"):
            problems.append(f"action {name} has no translated name and description")
            continue
        fields = dict((service or {}).get("fields", {}))
        for section in [v for v in fields.values() if isinstance(v, dict) and "fields" in v]:
            fields.update(section["fields"])
        for field, spec in fields.items():
            if isinstance(spec, dict) and "fields" in spec:
                continue  # a section: its fields were added above
            field_texts = texts.get("fields", {}).get(field, {})
            if not field_texts.get("name") or not field_texts.get("description"):
                problems.append(f"field {name}.{field} has no translated name and description")
    return problems


_ICON = vol.Match(r"^mdi:[-a-z0-9]+$")
ICONS_SCHEMA = vol.Schema(
    {
        vol.Optional("entity"): {
            vol.In([platform.value for platform in Platform]): {
                str: {
                    vol.Optional("default"): _ICON,
                    vol.Optional("state"): {str: _ICON},
                    vol.Optional("range"): {str: _ICON},
                    vol.Optional("state_attributes"): {
                        str: {vol.Optional("default"): _ICON, vol.Optional("state"): {str: _ICON}}
                    },
                }
            }
        },
        vol.Optional("services"): {
            str: vol.Any(
                _ICON, {vol.Optional("service"): _ICON, vol.Optional("sections"): {str: _ICON}}
            )
        },
    }
)


def check_icons(path: Path) -> list[str]:
    """icons.py: icons.json schema, and every action has an icon."""
    icons = json.loads((path / "icons.json").read_text())
    try:
        ICONS_SCHEMA(icons)
    except vol.Invalid as err:
        return [f"icons.json: {err}"]
    services = yaml.safe_load((path / "services.yaml").read_text()) or {}
    return [
        f"action {name} has no icon in icons.json"
        for name in services
        if name not in icons.get("services", {})
    ]


ALL_CHECKS = (
    check_manifest,
    check_dependencies,
    check_config_flow,
    check_translations,
    check_services,
    check_icons,
)
