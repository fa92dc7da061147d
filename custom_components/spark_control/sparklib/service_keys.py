"""The cluster's services: their keys, default containers and default ports (the one home of
these names; the HA glue's `const.py` re-exports them)."""

from __future__ import annotations

from typing import Final

VLLM: Final = "vllm"
PARAKEET: Final = "parakeet"
MAGPIE: Final = "magpie"
SERVICES: Final = (VLLM, PARAKEET, MAGPIE)
SPEECH_SERVICES: Final = (PARAKEET, MAGPIE)

# What spark-vllm-docker's launch-cluster.sh names vLLM's container, and the speech containers'
# names in the deployment guide.
DEFAULT_CONTAINERS: Final = {VLLM: "vllm_node", PARAKEET: "parakeet-asr", MAGPIE: "magpie-tts"}
DEFAULT_PORTS: Final = {VLLM: 8888, PARAKEET: 8000, MAGPIE: 9000}
