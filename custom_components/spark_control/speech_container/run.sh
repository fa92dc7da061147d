#!/bin/sh
# Build and start the speech container on a GPU node by hand (Home Assistant's deploy does the
# same over SSH). The `docker run` options live in docker-run.args (memory cap, no swap, GPU,
# port, model volume, environment); edit them there.
set -eu
IMAGE="${IMAGE:-spark-control/parakeet:manual}"
NAME="${NAME:-parakeet-asr}"
cd "$(dirname "$0")"
OPTIONS="$(grep -v '^[[:space:]]*#' docker-run.args | tr '\n' ' ')"
docker build -t "$IMAGE" .
docker rm -f "$NAME" 2>/dev/null || true
set -f  # split the options into words, never glob them
# shellcheck disable=SC2086
docker run -d --name "$NAME" $OPTIONS "$IMAGE"
