"""The container's settings from `PARAKEET_*` environment variables."""

from __future__ import annotations

import json

import pytest

from parakeet_server.config import ConfigError, config_from_env
from tests.paths import CONTRACTS


def test_segment_print_length_defaults_to_the_contracts_and_is_read_from_env() -> None:
    contract = json.loads((CONTRACTS / "diarize_chunk.json").read_text())
    assert config_from_env({}).segment_fingerprint_min_s == contract["segment_fingerprint_min_s"]
    config = config_from_env({"PARAKEET_SEGMENT_FINGERPRINT_MIN_S": "2.5"})
    assert config.segment_fingerprint_min_s == 2.5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("one", "PARAKEET_SEGMENT_FINGERPRINT_MIN_S='one' is not a valid float"),
        ("0", "PARAKEET_SEGMENT_FINGERPRINT_MIN_S must be a positive number of seconds, not 0.0"),
        ("-1", "must be a positive number of seconds, not -1.0"),
        ("nan", "must be a positive number of seconds, not nan"),
        ("inf", "must be a positive number of seconds, not inf"),
    ],
)
def test_unusable_segment_print_length_is_refused_at_start(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_env({"PARAKEET_SEGMENT_FINGERPRINT_MIN_S": raw})
    assert message in str(err.value)
