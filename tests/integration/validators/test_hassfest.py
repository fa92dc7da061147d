"""hassfest's checks for custom integrations pass on ours, and each one catches a real defect."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.validators.hassfest_rules import (
    ALL_CHECKS,
    check_config_flow,
    check_dependencies,
    check_icons,
    check_manifest,
    check_services,
    check_translations,
)
from tests.paths import REPO

INTEGRATION = REPO / "custom_components" / "spark_control"
ROOT = INTEGRATION.parents[1]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_integration_passes(check: Callable[[Path], list[str]]) -> None:
    assert check(INTEGRATION) == []


def test_only_integration_manifests_are_named_manifest_json() -> None:
    """The hassfest action validates every manifest.json of the repository."""
    found = {
        path.relative_to(ROOT).as_posix()
        for path in ROOT.glob("**/manifest.json")
        if not {".venv", ".cache", ".demo", "node_modules"} & set(path.relative_to(ROOT).parts)
    }
    assert found == {"custom_components/spark_control/manifest.json"}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "spark_control"
    shutil.copytree(INTEGRATION, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_dependency_is_caught(copy: Path) -> None:
    _edit_json(copy / "manifest.json", lambda m: m.__setitem__("dependencies", ["zeroconf"]))
    assert check_dependencies(copy) == [
        "voice_discovery.py: using component network but it's not in 'dependencies' "
        "or 'after_dependencies'"
    ]


def test_manifest_defects_are_caught(copy: Path) -> None:
    def change(manifest: dict) -> None:
        del manifest["version"]
        manifest["iot_class"] = "local_magic"
        manifest["zz_first"] = manifest.pop("domain")
        manifest["domain"] = manifest.pop("zz_first")

    _edit_json(copy / "manifest.json", change)
    problems = check_manifest(copy)
    assert any("iot_class" in problem for problem in problems)
    assert any("'version'" in problem for problem in problems)
    assert any("not sorted" in problem for problem in problems)


def test_untranslated_action_and_bad_icon_are_caught(copy: Path) -> None:
    with (copy / "services.yaml").open("a") as services:
        services.write("\nbrand_new_action:\n  fields:\n    level:\n      required: true\n")
    _edit_json(copy / "icons.json", lambda i: i["services"].__setitem__("swap_model", "swap"))
    assert check_services(copy) == [
        "action brand_new_action has no translated name and description"
    ]
    problems = check_icons(copy)
    assert problems
    assert "icons.json" in problems[0]


def test_bad_strings_and_config_flow_mismatch_are_caught(copy: Path) -> None:
    _edit_json(copy / "translations" / "en.json", lambda s: s["config"].__setitem__("erorr", {}))
    assert check_translations(copy)
    (copy / "config_flow.py").unlink()
    assert check_config_flow(copy) == ["config_flow is true but there is no config_flow.py"]
