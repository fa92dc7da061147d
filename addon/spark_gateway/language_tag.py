"""The language tags a client may send (`en`, `en-US`, `zh_Hant`, or `multi`), checked the same
way on every route that takes one."""

from __future__ import annotations

import re

LANGUAGE_TAG = re.compile(r"^(?:[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*|multi)$")
