"""Client key generation, pasted keys and fingerprints."""

from __future__ import annotations

import asyncssh
import pytest

from custom_components.spark_control.sparklib.errors import InvalidInput
from custom_components.spark_control.sparklib.keys import (
    fingerprint,
    generate_keypair,
    parse_private_key,
)


def test_generated_pair_is_ed25519_with_comment() -> None:
    pair = generate_keypair()
    assert pair.public_key.startswith("ssh-ed25519 AAAA")
    assert pair.public_key.endswith(" spark-control@homeassistant")
    assert "OPENSSH PRIVATE KEY" in pair.private_key
    assert parse_private_key(pair.private_key).public_key == pair.public_key
    assert generate_keypair() != pair


def test_fingerprint_matches_asyncssh() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    line = key.export_public_key().decode()
    assert fingerprint(line) == key.get_fingerprint("sha256")
    assert fingerprint(line).startswith("SHA256:")
    with pytest.raises(InvalidInput) as err:
        fingerprint("ssh-ed25519 not-base64")
    assert err.value.field == "host_key"


def test_pasted_keys() -> None:
    ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    pem = ecdsa.export_private_key("pkcs8-pem").decode()
    assert parse_private_key("  " + pem + "\n\n").public_key.startswith("ecdsa-sha2-nistp256 ")

    encrypted = ecdsa.export_private_key("openssh", passphrase="secret", rounds=50).decode()
    with pytest.raises(InvalidInput) as err:
        parse_private_key(encrypted)
    assert "passphrase" in str(err.value)
    for garbage in ("", "hello", "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n"):
        with pytest.raises(InvalidInput) as err:
            parse_private_key(garbage)
        assert err.value.field == "private_key"
