"""The Supervisor's own schemas for an add-on repository, transcribed from its source.

A `config.yaml` the Supervisor rejects does not fail anywhere visible: the store logs "Can't
read" and skips the add-on. The rules below are copied from home-assistant/supervisor, where
`supervisor/addons/` (Supervisor 2026.02) became `supervisor/apps/` (2026.05) with the same
rules: `addons/validate.py` (_SCHEMA_ADDON_CONFIG, SCHEMA_BUILD_CONFIG,
SCHEMA_ADDON_TRANSLATIONS, watchdog/webui patterns, RE_DOCKER_IMAGE_BUILD), `addons/options.py`
(RE_SCHEMA_ELEMENT), `addons/const.py` (RE_SLUG), `const.py` (ARCH_ALL), `store/validate.py`
(SCHEMA_REPOSITORY_CONFIG). Only the keys this repository uses are typed in detail; an unknown
key is reported, since the Supervisor silently drops it.
"""

from __future__ import annotations

import re

import voluptuous as vol

RE_SLUG = r"[-_.A-Za-z0-9]+"
# 2026.02 accepts the deprecated 32-bit arches too; the newest release lists these two only.
ARCH_ALL = {
    "2026.02": ["aarch64", "amd64", "armhf", "armv7", "i386"],
    "newest": ["aarch64", "amd64"],
}
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
RE_DOCKER_IMAGE_BUILD = re.compile(
    r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$"
)
RE_WATCHDOG = r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$"
RE_PORT_KEY = r"^\d+(?:/(?:tcp|udp))?$"

SCHEMA_ELEMENT = vol.Schema(
    vol.Any(
        vol.Match(RE_SCHEMA_ELEMENT),
        [vol.Any(vol.Match(RE_SCHEMA_ELEMENT), {str: vol.Self})],
        {str: vol.Self},
    )
)


def addon_config_schema(supervisor: str) -> vol.Schema:
    """_SCHEMA_ADDON_CONFIG for the keys an add-on like ours uses (extra keys are errors)."""
    return vol.Schema(
        {
            vol.Required("name"): str,
            vol.Required("version"): vol.All(str, vol.Match(r"^\d+(\.\d+)*$")),
            vol.Required("slug"): vol.Match(rf"^{RE_SLUG}$"),
            vol.Required("description"): str,
            vol.Required("arch"): [vol.In(ARCH_ALL[supervisor])],
            vol.Optional("url"): vol.Url(),
            vol.Optional("startup"): vol.In(
                ["initialize", "system", "services", "application", "once"]
            ),
            vol.Optional("boot"): vol.In(["auto", "manual", "manual_only"]),
            vol.Optional("init"): bool,
            vol.Optional("stage"): vol.In(["stable", "experimental", "deprecated"]),
            vol.Optional("ports"): {vol.Match(RE_PORT_KEY): vol.Any(None, vol.Range(1, 65535))},
            vol.Optional("ports_description"): {vol.Match(RE_PORT_KEY): str},
            vol.Optional("watchdog"): vol.Match(RE_WATCHDOG),
            vol.Optional("homeassistant"): str,
            vol.Optional("homeassistant_api"): bool,
            vol.Optional("hassio_api"): bool,
            vol.Optional("discovery"): [str],
            vol.Optional("map"): [vol.Any(str, dict)],
            vol.Optional("image"): str,
            vol.Optional("backup_exclude"): [str],
            vol.Optional("timeout"): vol.All(int, vol.Range(min=10, max=300)),
            vol.Optional("options"): dict,
            vol.Optional("schema"): vol.Any(vol.Schema({str: SCHEMA_ELEMENT}), False),
        }
    )


SCHEMA_BUILD_CONFIG = vol.Schema(
    {
        vol.Optional("build_from"): vol.Any(
            vol.Match(RE_DOCKER_IMAGE_BUILD),
            vol.Schema({vol.In(ARCH_ALL["2026.02"]): vol.Match(RE_DOCKER_IMAGE_BUILD)}),
        ),
        vol.Optional("squash"): bool,
        vol.Optional("args"): {str: str},
        vol.Optional("labels"): {str: str},
    }
)

SCHEMA_TRANSLATION_CONFIGURATION = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("description"): vol.Maybe(str),
        vol.Optional("fields"): {str: vol.Self},
    }
)
SCHEMA_ADDON_TRANSLATIONS = vol.Schema(
    {
        vol.Optional("configuration"): {str: SCHEMA_TRANSLATION_CONFIGURATION},
        vol.Optional("network"): {str: str},
    }
)

SCHEMA_REPOSITORY_CONFIG = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("url"): vol.Url(),
        vol.Optional("maintainer"): str,
    }
)
