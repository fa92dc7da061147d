"""Constants shared by every part of the Spark Control integration."""

from __future__ import annotations

import logging
from typing import Final

from .sparklib import service_keys

DOMAIN: Final = "spark_control"
LOGGER = logging.getLogger(__package__)

# Services the cluster runs. Their keys appear in actions, events and unique ids.
# Their one home is sparklib.service_keys; these names are the glue's spelling of them.
SERVICE_VLLM: Final = service_keys.VLLM
SERVICE_PARAKEET: Final = service_keys.PARAKEET
SERVICE_MAGPIE: Final = service_keys.MAGPIE
SERVICES: Final = service_keys.SERVICES
SPEECH_SERVICES: Final = service_keys.SPEECH_SERVICES
DEFAULT_CONTAINERS: Final = service_keys.DEFAULT_CONTAINERS
DEFAULT_PORTS: Final = service_keys.DEFAULT_PORTS

# Config entry data.
CONF_CLUSTER_NAME: Final = "cluster_name"
CONF_NODES: Final = "nodes"  # list[str] of hosts; the first is the head node
CONF_SSH_USER: Final = "ssh_user"
CONF_SSH_PORT: Final = "ssh_port"
CONF_PRIVATE_KEY: Final = "private_key"  # OpenSSH PEM text
CONF_PUBLIC_KEY: Final = "public_key"  # authorized_keys line
CONF_HOST_KEYS: Final = "host_keys"  # {host: openssh public host key line}
CONF_REPO_PATH: Final = "repo_path"  # spark-vllm-docker checkout on the head node
CONF_ENDPOINTS: Final = "endpoints"  # {service: {"host": str, "port": int}}
CONF_CONTAINERS: Final = "containers"  # {service: container name}
CONF_GATEWAY_URL: Final = "gateway_url"  # set by add-on discovery
CONF_GATEWAY_API_KEY: Final = "gateway_api_key"

DEFAULT_SSH_PORT: Final = 22
DEFAULT_REPO_PATH: Final = "~/spark-vllm-docker"

# Options.
CONF_POLL_INTERVAL: Final = "poll_interval"
CONF_METRICS_INTERVAL: Final = "metrics_interval"
CONF_SWAP_TIMEOUT: Final = "swap_timeout"
CONF_SWAP_FALLBACK: Final = "swap_fallback"  # relaunch the last good model after a failed swap
CONF_DEEP_CHECK_INTERVAL: Final = "deep_check_interval"  # minutes, 0 disables
CONF_RESTART_LIMIT: Final = "restart_limit"
CONF_RESTART_WINDOW: Final = "restart_window"  # minutes
CONF_VLLM_RESTART_LIMIT: Final = "vllm_restart_limit"
CONF_VLLM_RESTART_WINDOW: Final = "vllm_restart_window"  # minutes
CONF_PROBE_TIMEOUT: Final = "probe_timeout"  # seconds
# vLLM's own watch (vllm_watch.py): the cheap probe, the frozen-generation window, the log.
CONF_VLLM_PROBE_INTERVAL: Final = "vllm_probe_interval"  # seconds, 0 disables
CONF_VLLM_PROBE_TIMEOUT: Final = "vllm_probe_timeout"  # seconds
CONF_VLLM_FREEZE_WINDOW: Final = "vllm_freeze_window"  # seconds, 0 disables
CONF_VLLM_LOG_WATCH: Final = "vllm_log_watch"
CONF_VLLM_RELAUNCH_ON_EXIT: Final = "vllm_relaunch_on_exit"
CONF_VOICE_BRIDGES: Final = "voice_bridges"
CONF_STT_PORT: Final = "stt_port"
CONF_TTS_PORT: Final = "tts_port"

DEFAULT_POLL_INTERVAL: Final = 5  # seconds
DEFAULT_METRICS_INTERVAL: Final = 30  # seconds
DEFAULT_SWAP_TIMEOUT: Final = 15  # minutes
DEFAULT_SWAP_FALLBACK: Final = True
DEFAULT_DEEP_CHECK_INTERVAL: Final = 5  # minutes
DEFAULT_RESTART_LIMIT: Final = 3
DEFAULT_RESTART_WINDOW: Final = 30  # minutes
# A vLLM restart reloads the model for minutes: at most 2 per hour.
DEFAULT_VLLM_RESTART_LIMIT: Final = 2
DEFAULT_VLLM_RESTART_WINDOW: Final = 60  # minutes
DEFAULT_PROBE_TIMEOUT: Final = 30  # seconds
# A one-token completion answers in well under a second on an idle engine; 10 s leaves room
# for a queue, and a probe that times out is only confirmed by the full deep probe.
DEFAULT_VLLM_PROBE_INTERVAL: Final = 60  # seconds
DEFAULT_VLLM_PROBE_TIMEOUT: Final = 10  # seconds
# No token generated or prefilled for a minute while requests run, and the GPU idle.
DEFAULT_VLLM_FREEZE_WINDOW: Final = 60  # seconds
DEFAULT_VLLM_LOG_WATCH: Final = True
DEFAULT_VLLM_RELAUNCH_ON_EXIT: Final = True
DEFAULT_VOICE_BRIDGES: Final = True
# Clear of the Whisper (10300) and Piper (10200) add-ons' usual ports.
DEFAULT_STT_PORT: Final = 10310
DEFAULT_TTS_PORT: Final = 10210

# Events fired on the HA bus; payloads are documented in docs/events.md.
EVENT_SWAP_STARTED: Final = f"{DOMAIN}_swap_started"
EVENT_SWAP_FINISHED: Final = f"{DOMAIN}_swap_finished"
EVENT_SWAP_FAILED: Final = f"{DOMAIN}_swap_failed"
EVENT_SWAP_FELL_BACK: Final = f"{DOMAIN}_swap_fell_back"
EVENT_WEDGE_DETECTED: Final = f"{DOMAIN}_wedge_detected"
EVENT_SERVICE_RESTARTED: Final = f"{DOMAIN}_service_restarted"
EVENT_RESTART_SUPPRESSED: Final = f"{DOMAIN}_restart_suppressed"
EVENT_SERVICE_RECOVERED: Final = f"{DOMAIN}_service_recovered"
EVENT_HEALTH_REPORT: Final = f"{DOMAIN}_health_report"
# vLLM's server exited on its own while serving (no stop, swap or start asked for it).
EVENT_VLLM_EXITED: Final = f"{DOMAIN}_vllm_exited"
# Stopped on request (Running switch off, `stop_service`); filed under the model select.
EVENT_VLLM_STOPPED: Final = f"{DOMAIN}_vllm_stopped"
# A wedge report from the add-on gateway or the Wyoming bridge; triggers a deep probe at once.
EVENT_WEDGE_REPORT: Final = f"{DOMAIN}_wedge_report"
# A voice command through the Wyoming STT bridge was spoken by an enrolled person.
EVENT_SPEAKER_IDENTIFIED: Final = f"{DOMAIN}_speaker_identified"

# Recovery (recovery engineer): a restart that failed (SSH error) or did not bring the service back.
EVENT_RESTART_FAILED: Final = f"{DOMAIN}_restart_failed"
SERVICE_RUN_DEEP_CHECK: Final = "run_deep_check"

# Operations: model downloads and the spark-vllm-docker software update (docs/events.md).
EVENT_DOWNLOAD_STARTED: Final = f"{DOMAIN}_download_started"
EVENT_DOWNLOAD_FINISHED: Final = f"{DOMAIN}_download_finished"
EVENT_DOWNLOAD_FAILED: Final = f"{DOMAIN}_download_failed"
EVENT_SOFTWARE_UPDATE_STARTED: Final = f"{DOMAIN}_software_update_started"
EVENT_SOFTWARE_UPDATE_FINISHED: Final = f"{DOMAIN}_software_update_finished"
EVENT_SOFTWARE_UPDATE_FAILED: Final = f"{DOMAIN}_software_update_failed"
EVENT_SPEECH_CONTAINER_DEPLOY_STARTED: Final = f"{DOMAIN}_speech_container_deploy_started"
EVENT_SPEECH_CONTAINER_DEPLOY_FINISHED: Final = f"{DOMAIN}_speech_container_deploy_finished"
EVENT_SPEECH_CONTAINER_DEPLOY_FAILED: Final = f"{DOMAIN}_speech_container_deploy_failed"
EVENT_SPEECH_CONTAINER_REMOVED: Final = f"{DOMAIN}_speech_container_removed"
