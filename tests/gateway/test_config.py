"""Loading the gateway's options from Supervisor's JSON and from a YAML file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spark_gateway.config import (
    DEFAULT_VOICE_ALIASES,
    ConfigError,
    GatewayConfig,
    config_from_options,
    load_config,
)
from spark_gateway.routes.speakers import speaker_options
from spark_gateway.speakers.pipeline import SpeakerOptions


def test_supervisor_options_json(tmp_path: Path) -> None:
    options = {
        "vllm_url": "http://192.168.1.50:8888/",
        "parakeet_url": "http://192.168.1.51:8000",
        "magpie_url": "http://192.168.1.51:9000",
        "api_keys": ["sk-one-12345678", "sk-two-12345678"],
        "voice_aliases": [{"alias": "narrator", "voice": "Magpie-Multilingual.EN-US.Jason"}],
        "default_speech_format": "wav",
        "max_upload_mb": 2,
        "max_audio_minutes": 30,
        "timeouts": {"transcription": 42, "connect": 1.5},
        "cors_origins": ["http://webui.lan:3000"],
        "unknown_future_option": True,
    }
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    config = load_config(path)
    assert config.vllm_url == "http://192.168.1.50:8888"  # trailing slash dropped
    assert config.api_keys == ("sk-one-12345678", "sk-two-12345678")
    assert config.voice_aliases["narrator"] == "Magpie-Multilingual.EN-US.Jason"
    assert config.voice_aliases["alloy"] == DEFAULT_VOICE_ALIASES["alloy"]
    assert config.default_speech_format == "wav"
    assert config.max_upload_bytes == 2 * 1024 * 1024
    assert config.max_audio_seconds == 1800
    assert config.timeouts.transcription == 42
    assert config.timeouts.connect == 1.5
    assert config.timeouts.chat == GatewayConfig().timeouts.chat
    assert config.cors_origins == ("http://webui.lan:3000",)


def test_yaml_file_with_mapping_aliases(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "vllm_url: http://127.0.0.1:8888\n"
        "voice_aliases:\n  alloy: Magpie-Multilingual.EN-US.Mia\n"
        "port: 9123\ndata_dir: /tmp/x\nlong_audio_threshold_s: 120\n"
    )
    config = load_config(path)
    assert config.voice_aliases["alloy"] == "Magpie-Multilingual.EN-US.Mia"
    assert config.port == 9123
    assert config.data_dir == Path("/tmp/x")
    assert config.long_audio_threshold_s == 120
    assert config.api_keys == ()
    assert config.auth_required is True


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == config_from_options({})


def test_speaker_distances_reach_the_pipeline() -> None:
    """Unset, the add-on runs at the pipeline's own defaults (one home for each value); set,
    each option moves its tunable (the speaker encoder's scale differs from model to model)."""

    def distances(options: SpeakerOptions) -> tuple[float, ...]:
        return (options.link_threshold, options.rejoin_threshold, options.name_threshold,
                options.confirm_margin, options.low_confidence, options.split_distance)  # fmt: skip

    assert distances(speaker_options(config_from_options({}))) == distances(SpeakerOptions())
    options = {
        "speaker_link_threshold": 0.4,
        "speaker_rejoin_threshold": 0.2,
        "speaker_name_threshold": 0.45,
        "speaker_confirm_margin": 0.05,
        "speaker_low_confidence": 0.7,
        "speaker_split_distance": 0.25,
    }
    tuned = speaker_options(config_from_options(options))
    assert distances(tuned) == (0.4, 0.2, 0.45, 0.05, 0.7, 0.25)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"vllm_url": "not a url"}, "vllm_url"),
        ({"speaker_low_confidence": 1.5}, "speaker_low_confidence"),
        ({"default_speech_format": "ogg"}, "default_speech_format"),
        ({"api_keys": ["short"]}, "api_keys"),
        ({"port": 70000}, "port"),
        ({"timeouts": {"chat": -1}}, "timeouts"),
    ],
)
def test_invalid_options_are_named(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config_from_options(options)


def test_unreadable_or_non_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
