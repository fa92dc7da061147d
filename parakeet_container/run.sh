#!/bin/sh
# Build and start the speech container on a GPU node.
# --memory with an equal --memory-swap caps RAM and forbids swap: a huge upload ends in an
# OOM kill (and a restart) instead of swap-thrashing the whole node, as a 90-minute file once did.
set -eu
IMAGE="${IMAGE:-spark-control/parakeet:0.1.0}"
NAME="${NAME:-parakeet-asr}"
MEMORY="${MEMORY:-40g}"
PORT="${PORT:-8000}"
cd "$(dirname "$0")"
docker build -t "$IMAGE" .
docker rm -f "$NAME" 2>/dev/null || true
docker run -d --name "$NAME" \
  --gpus all \
  --restart unless-stopped \
  --memory "$MEMORY" --memory-swap "$MEMORY" \
  --shm-size 2g \
  -p "$PORT:8000" \
  -v parakeet-models:/models \
  -e PARAKEET_MAX_AUDIO_S="${PARAKEET_MAX_AUDIO_S:-14400}" \
  -e PARAKEET_DIAR_MODEL="${PARAKEET_DIAR_MODEL:-nvidia/diar_streaming_sortformer_4spk-v2}" \
  "$IMAGE"
