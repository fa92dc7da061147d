"""Spark Control gateway: one OpenAI-compatible URL for vLLM, Parakeet and Magpie."""

from __future__ import annotations

__version__ = "0.1.0"
