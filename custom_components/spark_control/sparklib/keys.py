"""SSH key material: the client key pair HA uses and fingerprints of host keys."""

from __future__ import annotations

from dataclasses import dataclass

import asyncssh

from .errors import InvalidInput

DEFAULT_KEY_COMMENT = "spark-control@homeassistant"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An OpenSSH private key (PEM text) and its `authorized_keys` line."""

    private_key: str
    public_key: str


def generate_keypair(comment: str = DEFAULT_KEY_COMMENT) -> KeyPair:
    """Create a fresh Ed25519 key pair (fast, CPU only; fine to call in the event loop)."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    return _pair(key)


def parse_private_key(text: str) -> KeyPair:
    """Read a pasted OpenSSH/PEM private key; InvalidInput if unreadable or passphrase-protected."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("private_key", "no private key given")
    try:
        key = asyncssh.import_private_key(text.strip() + "\n")
    except asyncssh.KeyImportError as err:
        if "passphrase" in str(err).lower():
            raise InvalidInput(
                "private_key", "the key is protected by a passphrase; paste an unencrypted key"
            ) from None
        raise InvalidInput("private_key", "not a readable private key") from None
    if key.get_comment() is None:
        key.set_comment(DEFAULT_KEY_COMMENT)
    return _pair(key)


def import_public_line(line: str, field: str = "host_key") -> asyncssh.SSHKey:
    """Parse an OpenSSH public key line (`ssh-ed25519 AAAA... comment`)."""
    if not isinstance(line, str) or not line.strip():
        raise InvalidInput(field, "no public key given")
    try:
        return asyncssh.import_public_key(line.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise InvalidInput(field, "not a readable OpenSSH public key") from None


def public_line(key: asyncssh.SSHKey) -> str:
    """The OpenSSH one-line form of a public key, without a trailing newline."""
    return key.export_public_key("openssh").decode().strip()


def fingerprint(openssh_public_line: str) -> str:
    """SHA256 fingerprint (`SHA256:...`) of an OpenSSH public key line, as `ssh-keygen -l` shows."""
    return import_public_line(openssh_public_line).get_fingerprint("sha256")


def _pair(key: asyncssh.SSHKey) -> KeyPair:
    return KeyPair(
        private_key=key.export_private_key("openssh").decode(),
        public_key=public_line(key),
    )
