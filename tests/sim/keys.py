"""SSH key helpers for tests: a fresh client key pair in the formats the integration stores."""

from __future__ import annotations

import asyncssh


def generate_client_key(comment: str = "spark-control-test") -> tuple[str, str]:
    """Return (private key as OpenSSH PEM text, public key as an authorized_keys line)."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    private_pem = key.export_private_key("openssh").decode()
    public_line = key.export_public_key("openssh").decode().strip()
    return private_pem, public_line


def generate_host_key() -> asyncssh.SSHKey:
    """A new ed25519 host key for one simulated node."""
    return asyncssh.generate_private_key("ssh-ed25519", comment="spark-sim-host")


def public_line(key: asyncssh.SSHKey) -> str:
    """The key's public half as an OpenSSH line (what known_hosts and config entries hold)."""
    return key.export_public_key("openssh").decode().strip()
