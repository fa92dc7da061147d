"""The bundled catalog, user models, overrides and the storage round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custom_components.spark_control.sparklib.catalog import (
    BUNDLED_MODELS_PATH,
    Catalog,
    ModelEntry,
    ModelOptions,
    load_bundled_models,
    parse_models_yaml,
    slugify,
)
from custom_components.spark_control.sparklib.errors import InvalidInput


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(load_bundled_models())


def test_bundled_models_are_the_five_of_the_design(catalog: Catalog) -> None:
    assert catalog.keys() == ["qwen3-vl", "gemma4", "qwen36", "qwen3-235b-fp8", "qwen2.5-72b"]
    assert catalog.get("qwen36").repo_id == "RedHatAI/Qwen3.6-35B-A3B-NVFP4"
    for key in ("qwen3-235b-fp8", "qwen2.5-72b"):
        entry = catalog.get(key)
        assert (entry.mode, entry.tensor_parallel) == ("cluster", 2)
    for key in ("qwen3-vl", "gemma4", "qwen36"):
        assert catalog.get(key).mode == "solo"
    assert all(catalog.is_bundled(entry.key) for entry in catalog.models)
    assert BUNDLED_MODELS_PATH.name == "models.yaml"


def test_find_by_repo_id(catalog: Catalog) -> None:
    entry = catalog.find_by_repo_id("redhatai/qwen3.6-35b-a3b-nvfp4")
    assert entry is not None
    assert entry.key == "qwen36"
    assert catalog.find_by_repo_id("someone/unknown-model") is None


def test_overrides_merge_and_clear(catalog: Catalog) -> None:
    original = catalog.get("qwen36")
    catalog.set_options("qwen36", ModelOptions(max_model_len=8192))
    entry = catalog.set_options("qwen36", ModelOptions(fp8_kv_cache=False))
    assert (entry.max_model_len, entry.fp8_kv_cache) == (8192, False)
    assert catalog.get("qwen36") == entry
    assert catalog.options("qwen36") == ModelOptions(max_model_len=8192, fp8_kv_cache=False)
    assert catalog.clear_options("qwen36") == original
    with pytest.raises(InvalidInput) as err:
        catalog.set_options("qwen36", ModelOptions(gpu_memory_utilization=1.5))
    assert err.value.field == "gpu_memory_utilization"
    with pytest.raises(InvalidInput):
        ModelOptions(max_model_len=10)
    with pytest.raises(InvalidInput) as err:
        catalog.set_options("nope", ModelOptions(max_model_len=8192))
    assert err.value.field == "model"


def test_add_and_remove_user_model(catalog: Catalog) -> None:
    entry = catalog.add(
        "Llama 3.1 8B Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "solo",
        options=ModelOptions(max_model_len=16384, fastsafetensors=True),
    )
    assert entry.key == "llama-3.1-8b-instruct"
    assert (entry.tensor_parallel, entry.max_model_len, entry.fastsafetensors) == (1, 16384, True)
    assert entry.prefix_caching is True
    assert not catalog.is_bundled(entry.key)
    big = catalog.add("Big one", "org/big-model", "cluster")
    assert big.tensor_parallel == 2
    assert len(catalog) == 7

    with pytest.raises(InvalidInput) as err:
        catalog.add("Llama 3.1 8B Instruct", "other/repo", "solo")
    assert err.value.field == "model"
    with pytest.raises(InvalidInput) as err:
        catalog.add("Another name", "META-LLAMA/Llama-3.1-8B-Instruct", "solo")
    assert err.value.field == "repo_id"
    with pytest.raises(InvalidInput) as err:
        catalog.add("Evil", "x; rm -rf /", "solo")
    assert err.value.field == "repo_id"
    with pytest.raises(InvalidInput) as err:
        catalog.add("Odd mode", "org/odd", "swarm")  # type: ignore[arg-type]
    assert err.value.field == "mode"
    with pytest.raises(InvalidInput):
        catalog.add("Solo tp", "org/solo-tp", "solo", tensor_parallel=2)
    with pytest.raises(InvalidInput):
        catalog.add("\x1b[31mred", "org/red", "solo")

    with pytest.raises(InvalidInput) as err:
        catalog.remove("qwen36")
    assert "bundled" in str(err.value)
    with pytest.raises(InvalidInput):
        catalog.remove("not-there")
    catalog.set_options(entry.key, ModelOptions(prefix_caching=False))
    catalog.remove(entry.key)
    assert entry.key not in catalog
    assert entry.key not in catalog.to_dict()["overrides"]


def test_storage_round_trip_is_json_safe(catalog: Catalog) -> None:
    catalog.add("Mistral Small", "mistralai/Mistral-Small-3.2-24B-Instruct-2506", "solo")
    catalog.set_options("qwen2.5-72b", ModelOptions(gpu_memory_utilization=0.8))
    stored = json.loads(json.dumps(catalog.to_dict()))
    restored = Catalog.from_dict(stored, load_bundled_models())
    assert restored.models == catalog.models
    assert restored.get("qwen2.5-72b").gpu_memory_utilization == 0.8
    assert restored.to_dict() == catalog.to_dict()


def test_from_dict_drops_what_no_longer_validates(caplog: pytest.LogCaptureFixture) -> None:
    bundled = load_bundled_models()
    stored = {
        "version": 1,
        "user_models": [
            {"key": "ok", "name": "OK", "repo_id": "org/ok", "mode": "solo"},
            {"key": "bad key!", "name": "Bad", "repo_id": "org/bad", "mode": "solo"},
            # An update bundled this repo since the user added it.
            {
                "key": "mine",
                "name": "Mine",
                "repo_id": "Qwen/Qwen2.5-72B-Instruct",
                "mode": "cluster",
            },
        ],
        "overrides": {"gone": {"max_model_len": 4096}, "qwen36": {"max_model_len": "big"}},
    }
    catalog = Catalog.from_dict(stored, bundled)
    assert catalog.keys()[-1] == "ok"
    assert len(catalog) == 6
    assert catalog.options("qwen36").empty
    assert "Dropping stored" in caplog.text
    assert len(Catalog.from_dict(None, bundled)) == 5


def test_models_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        parse_models_yaml("models: [")
    with pytest.raises(InvalidInput):
        parse_models_yaml("just: text")
    with pytest.raises(InvalidInput) as err:
        parse_models_yaml("models:\n  - {key: a, name: A, repo_id: o/a}\n")
    assert err.value.field == "mode"
    duplicated = "models:\n" + "  - {key: a, name: A, repo_id: o/a, mode: solo}\n" * 2
    with pytest.raises(InvalidInput):
        parse_models_yaml(duplicated)
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - {key: a, name: A, repo_id: o/a, mode: cluster}\n")
    (entry,) = load_bundled_models(path)
    assert entry == ModelEntry.from_dict(entry.to_dict())
    assert entry.tensor_parallel == 2


def test_slugify() -> None:
    assert slugify("  Qwen 3 (VL)  ") == "qwen-3-vl"
    assert slugify("!!!") == "model"
