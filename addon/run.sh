#!/usr/bin/with-contenv bashio
# shellcheck shell=bash
# Start script: the gateway reads Supervisor's /data/options.json, generates and persists an API
# key on first start when none is configured, and (--announce) posts a discovery message
# {"service": "spark_control", "config": {"url": "http://<hostname>:8080", "api_key": ...}} to
# http://supervisor/discovery with SUPERVISOR_TOKEN, so the integration links it.
set -euo pipefail

bashio::log.info "Starting the Spark Control gateway on port 8080"
if ! bashio::config.has_value 'vllm_url' && ! bashio::config.has_value 'parakeet_url' \
    && ! bashio::config.has_value 'magpie_url'; then
    bashio::log.warning "No upstream URL is set: configure vLLM, Parakeet and/or Magpie in the options"
fi

exec python3 -m spark_gateway --config /data/options.json --announce
