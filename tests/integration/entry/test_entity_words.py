"""What a user reads on every entity of a running cluster, against translations/en.json and
icons.json: a translated name, a translated text for every state of an enum and every
attribute the entity shows, and an icon (its own or its device class's)."""

from __future__ import annotations

import json
import re

from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.ha_entry import enable_all_entities
from tests.paths import REPO
from tests.sim import SimCluster

PACKAGE = REPO / "custom_components/spark_control"
EN = json.loads((PACKAGE / "translations/en.json").read_text())["entity"]
ICONS = json.loads((PACKAGE / "icons.json").read_text())["entity"]
# Attributes HA itself adds and translates (or that are no text).
HA_ATTRIBUTES = {
    "friendly_name",
    "icon",
    "unit_of_measurement",
    "device_class",
    "state_class",
    "options",
    "entity_picture",
    "supported_features",
    "assumed_state",
    "attribution",
    # update entities' own attributes
    "auto_update",
    "display_precision",
    "installed_version",
    "in_progress",
    "latest_version",
    "release_summary",
    "release_url",
    "skipped_version",
    "title",
    "update_percentage",
}


async def test_every_entity_is_named_and_described_in_words(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: SimCluster
) -> None:
    await enable_all_entities(hass, loaded_entry)
    registry = er.async_get(hass)
    problems: list[str] = []
    entries = er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
    assert len(entries) > 30
    for entry in entries:
        state = hass.states.get(entry.entity_id)
        assert state is not None, entry.entity_id
        key = entry.translation_key
        words = EN.get(entry.domain, {}).get(key or "", {})
        if key is None and entry.original_device_class is None:
            problems.append(f"{entry.entity_id}: no translation key and no device class")
        elif key is not None and "name" not in words:
            problems.append(f"{entry.entity_id}: no name for {entry.domain}.{key}")
        if (
            key is not None
            and key not in ICONS.get(entry.domain, {})
            and not (entry.original_device_class)
        ):
            problems.append(f"{entry.entity_id}: no icon for {entry.domain}.{key}")
        if state.attributes.get("device_class") == SensorDeviceClass.ENUM:
            missing = set(state.attributes["options"]) - set(words.get("state", {}))
            if missing:
                problems.append(f"{entry.entity_id}: untranslated states {sorted(missing)}")
        shown = set(state.attributes) - HA_ATTRIBUTES
        missing = shown - set(words.get("state_attributes", {}))
        if missing:
            problems.append(f"{entry.entity_id}: untranslated attributes {sorted(missing)}")
    assert problems == []


# Names of things, kept as their makers write them.
PROPER_NOUNS = {"Hugging", "Face", "Parakeet", "Magpie", "Speech"}


def _entity_texts() -> list[str]:
    texts = []
    for platform in EN.values():
        for words in platform.values():
            texts += [words.get("name", ""), *words.get("state", {}).values()]
            for attribute in words.get("state_attributes", {}).values():
                texts += [attribute["name"], *attribute.get("state", {}).values()]
    return [text for text in texts if text]


def test_entity_words_follow_the_style_guide() -> None:
    """Sentence case (only the first word and names capitalised; acronyms in capitals, "ID"
    too), and units as words, not abbreviations in brackets."""
    for text in _entity_texts():
        later_words = re.findall(r"[A-Za-z][\w-]*", text)[1:]
        assert all(
            word.islower() or word.isupper() or word in PROPER_NOUNS or word.startswith("vLLM")
            for word in later_words
        ), text
        assert not re.search(r"\bid\b|\([a-zA-Z/]+\)", text), text
