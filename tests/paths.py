"""Where the repository's files are, for tests that read them (contracts, translations, the
add-on and container folders): one home, so moving a test folder never changes what it reads."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "tests" / "contracts"
