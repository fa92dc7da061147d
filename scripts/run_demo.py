"""Orchestrates `./scripts/demo`: simulator → add-on gateway → Home Assistant with the integration.

Everything listens on 127.0.0.1. Child processes run in their own sessions so that Ctrl-C (or
SIGTERM) reaches only this orchestrator, which then stops each child's whole process group and
the in-process simulator: nothing is left running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "addon"))

from custom_components.spark_control.sparklib.catalog import load_bundled_models  # noqa: E402
from tests.sim import SimCluster, SimConfig  # noqa: E402
from tests.sim.keys import generate_client_key  # noqa: E402

DEFAULT_DEMO_DIR = ROOT / ".demo"
HA_USER = "demo"
HA_PASSWORD = "spark-demo"  # a throwaway local demo account, printed for the user
CLIENT_ID_PATH = "/"
# The operations to try: a model whose weights are on no node yet (the bundled ones are), and a
# spark-vllm-docker checkout some commits behind upstream.
DOWNLOAD_REPO = "Qwen/Qwen3-8B"
DOWNLOAD_BYTES = 16_400_000_000
COMMITS_BEHIND = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Children:
    """Child processes, each in its own session, stopped as whole process groups."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self._procs.append((name, proc))

    def check_alive(self) -> None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see its log in the demo directory"
                )

    def stop_all(self) -> None:
        for _name, proc in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in reversed(self._procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def wait_http(url: str, *, within: float, children: Children, ok: set[int]) -> None:
    """Poll `url` until it answers with one of the `ok` statuses."""
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as session:
        while True:
            children.check_alive()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=3)) as resp:
                    if resp.status in ok:
                        return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} did not come up within {within:.0f} s")
            await asyncio.sleep(0.5)


def write_gateway_config(
    demo_dir: Path, sim: SimCluster, port: int, api_key: str, ha: tuple[str, str] | None
) -> Path:
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "vllm_url": sim.vllm.url,
        "parakeet_url": sim.parakeet.url,
        "magpie_url": sim.magpie.url,
        "api_keys": [api_key],
        "data_dir": str(demo_dir / "gateway-data"),
    }
    if ha is not None:  # wedge and health reports go to the demo's Home Assistant
        config["ha_url"], config["ha_token"] = ha
    path = demo_dir / "gateway.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def stored_http_settings(port: int) -> dict[str, Any] | None:
    """HA's stored HTTP settings (`.storage/http`): loopback only, on `port`, confirmed.

    Home Assistant 2026.10+ keeps these settings in its storage, as its Network settings page
    saves them, and raises a repair for `http:` in configuration.yaml (deprecated; migrated
    once as a trial that reverts after 5 minutes unless confirmed). Built with HA's own storage
    schema; None for releases without that storage (2026.2), which read `http:` from YAML.
    """
    try:
        from homeassistant.components.http import config as http_config
    except ImportError:
        return None
    settings = http_config.HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": port})
    now = datetime.now(UTC).isoformat()
    confirmed = {"created_at": now, "error": None, "error_message": None}
    return {
        "version": http_config.STORAGE_VERSION,
        "minor_version": http_config.STORAGE_MINOR_VERSION,
        "key": http_config.STORAGE_KEY,
        "data": {
            "stable": {**settings, **confirmed},
            "pending": None,
            "yaml_migration_done": True,
        },
    }


def write_ha_config(ha_dir: Path, port: int) -> None:
    if ha_dir.exists():
        shutil.rmtree(ha_dir)  # a fresh instance each run keeps onboarding deterministic
    (ha_dir / "custom_components").mkdir(parents=True)
    (ha_dir / "custom_components" / "spark_control").symlink_to(
        ROOT / "custom_components" / "spark_control"
    )
    storage = ha_dir / ".storage"
    storage.mkdir()
    http_settings = stored_http_settings(port)
    if http_settings is not None:
        (storage / "http").write_text(json.dumps(http_settings))
        http_yaml = ""
    else:
        http_yaml = f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\n"
    (ha_dir / "configuration.yaml").write_text(
        f"""homeassistant:
  name: Spark Control demo
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
{http_yaml}frontend:
config:
api:
logbook:
history:
logger:
  default: warning
  logs:
    custom_components.spark_control: info
lovelace:
  dashboards:
    spark-control:
      mode: yaml
      title: Spark Control
      icon: mdi:expansion-card-variant
      show_in_sidebar: true
      filename: spark_dashboard.yaml
"""
    )
    # The integration's own dashboard strategy, as a user sets it up (docs/dashboard.md).
    (ha_dir / "spark_dashboard.yaml").write_text("strategy:\n  type: custom:spark-control\n")
    # Location and analytics are answered by configuration.yaml; marking those onboarding steps
    # done keeps HA from adding its default weather/radio/TTS integrations to the demo.
    (storage / "onboarding").write_text(
        json.dumps(
            {
                "version": 4,
                "minor_version": 1,
                "key": "onboarding",
                "data": {"done": ["core_config", "analytics"]},
            }
        )
    )


async def onboard(url: str) -> tuple[str, str]:
    """Create the demo user through HA's onboarding API; return (access token, long-lived token)."""
    client_id = url + CLIENT_ID_PATH
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Demo",
                "username": HA_USER,
                "password": HA_PASSWORD,
                "language": "en",
            },
        ) as resp:
            resp.raise_for_status()
            auth_code = (await resp.json())["auth_code"]
        async with session.post(
            f"{url}/auth/token",
            data={"grant_type": "authorization_code", "code": auth_code, "client_id": client_id},
        ) as resp:
            resp.raise_for_status()
            access = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {access}"}
        async with session.post(
            f"{url}/api/onboarding/integration",
            json={"client_id": client_id, "redirect_uri": client_id},
            headers=headers,
        ) as resp:
            resp.raise_for_status()
        long_lived = await websocket_call(
            session,
            url,
            access,
            {"type": "auth/long_lived_access_token", "client_name": "spark-demo", "lifespan": 3650},
        )
    return access, str(long_lived)


async def websocket_reply(
    session: aiohttp.ClientSession, url: str, token: str, message: dict[str, Any]
) -> dict[str, Any]:
    """One command over HA's WebSocket API; its whole `result` message, success or not."""
    async with session.ws_connect(f"{url}/api/websocket") as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": token})
        if (await ws.receive_json())["type"] != "auth_ok":
            raise RuntimeError("Home Assistant refused the demo token")
        await ws.send_json({"id": 1, **message})
        return dict(await ws.receive_json())


async def websocket_call(
    session: aiohttp.ClientSession, url: str, token: str, message: dict[str, Any]
) -> Any:
    reply = await websocket_reply(session, url, token, message)
    if not reply.get("success"):
        raise RuntimeError(f"websocket call failed: {reply}")
    return reply["result"]


def flow_answers(
    sim: SimCluster, private_key: str, gateway_url: str, api_key: str
) -> dict[str, Any]:
    """Values for the integration's config-flow fields, keyed by field name."""
    head, *others = sim.nodes
    speech = others[0] if others else head
    return {
        "cluster_name": "Demo cluster",
        "nodes": ", ".join(f"{n.host}:{n.ssh_port}" for n in sim.nodes),
        "ssh_user": sim.config.username,
        "ssh_port": head.ssh_port,
        "repo_path": sim.config.repo_path,
        "vllm": f"{head.host}:{_port(sim.vllm.url)}",
        "parakeet": f"{speech.host}:{_port(sim.parakeet.url)}",
        "magpie": f"{speech.host}:{_port(sim.magpie.url)}",
        "key_source": "paste",
        "private_key": private_key,
        "gateway_url": gateway_url,
        "gateway_api_key": api_key,
    }


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def add_integration(url: str, token: str, answers: dict[str, Any]) -> dict[str, Any]:
    """Walk the integration's real config flow over HA's REST API, answering by field name."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{url}/api/config/config_entries/flow", json={"handler": "spark_control"}
        ) as resp:
            step = await resp.json()
        for _ in range(10):
            if step.get("type") == "create_entry":
                return dict(step)
            if step.get("type") != "form":
                raise RuntimeError(f"config flow stopped: {step}")
            if step.get("errors"):
                raise RuntimeError(f"config flow step {step['step_id']} errors: {step['errors']}")
            fields = [field["name"] for field in step.get("data_schema", [])]
            payload = {name: answers[name] for name in fields if name in answers}
            async with session.post(
                f"{url}/api/config/config_entries/flow/{step['flow_id']}", json=payload
            ) as resp:
                step = await resp.json()
    raise RuntimeError("config flow did not finish")


@contextlib.asynccontextmanager
async def stop_signals() -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def demo_sim_config(args: argparse.Namespace, public_key: str) -> SimConfig:
    """The simulated cluster: the bundled models already downloaded, DOWNLOAD_REPO not, the
    checkout COMMITS_BEHIND; the speech container runs unlabelled (started by hand), so its
    update entity offers to deploy the one the integration ships."""
    return SimConfig(
        nodes=args.nodes,
        authorized_keys=[public_key],
        load_seconds=args.load_seconds,
        cached_models=tuple(model.repo_id for model in load_bundled_models()),
        model_bytes={DOWNLOAD_REPO: DOWNLOAD_BYTES},
        download_seconds=args.download_seconds,
        build_seconds=args.build_seconds,
        updates_behind=COMMITS_BEHIND,
    )


async def run(args: argparse.Namespace) -> None:
    demo_dir = Path(args.demo_dir).resolve()
    demo_dir.mkdir(parents=True, exist_ok=True)
    private_key, public_key = generate_client_key()
    key_dir = demo_dir / "ssh"
    key_dir.mkdir(exist_ok=True)
    (key_dir / "id_ed25519").write_text(private_key)
    (key_dir / "id_ed25519").chmod(0o600)
    (key_dir / "id_ed25519.pub").write_text(public_key + "\n")

    children = Children()
    endpoints_file = demo_dir / "endpoints.json"
    endpoints_file.unlink(missing_ok=True)
    async with (
        stop_signals() as stop,
        SimCluster(demo_sim_config(args, public_key)) as sim,
    ):
        try:
            endpoints: dict[str, Any] = {"simulator": sim.endpoints()}
            ha: tuple[str, str] | None = None
            if not args.no_ha:
                ha_port = free_port()
                ha_dir = demo_dir / "ha"
                write_ha_config(ha_dir, ha_port)
                children.start(
                    "homeassistant",
                    [
                        sys.executable,
                        str(ROOT / "scripts" / "run_home_assistant.py"),
                        "-c",
                        str(ha_dir),
                        "--skip-pip",
                    ],
                    demo_dir / "logs" / "homeassistant.log",
                )
                ha_url = f"http://127.0.0.1:{ha_port}"
                print(f"Starting Home Assistant at {ha_url} (takes a little while)...", flush=True)
                await wait_http(f"{ha_url}/api/onboarding", within=240, children=children, ok={200})
                access, long_lived = await onboard(ha_url)
                ha = (ha_url, long_lived)

            gateway_port = free_port()
            api_key = "sk-demo-" + secrets.token_urlsafe(18)
            gateway_config = write_gateway_config(demo_dir, sim, gateway_port, api_key, ha)
            children.start(
                "gateway",
                [sys.executable, "-m", "spark_gateway", "--config", str(gateway_config)],
                demo_dir / "logs" / "gateway.log",
                env={"PYTHONPATH": str(ROOT / "addon")},
            )
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            await wait_http(f"{gateway_url}/health", within=60, children=children, ok={200})
            endpoints["gateway"] = {
                "url": gateway_url,
                "openai_base_url": f"{gateway_url}/v1",
                "api_key": api_key,
            }

            if ha is not None:
                entry = await add_integration(
                    ha_url, access, flow_answers(sim, private_key, gateway_url, api_key)
                )
                entry_id = entry["result"]["entry_id"]
                endpoints["home_assistant"] = {
                    "url": ha_url,
                    # The strategy names each cluster's view by its config entry.
                    "dashboard": f"{ha_url}/spark-control/{entry_id}",
                    "username": HA_USER,
                    "password": HA_PASSWORD,
                    "long_lived_access_token": long_lived,
                    "config_entry_id": entry["result"]["entry_id"],
                }
                endpoints["wyoming"] = await wyoming_endpoints(ha_url, long_lived, entry_id)
                endpoints["operations"] = await operations_endpoints(ha_url, long_lived, entry_id)

            endpoints_file.write_text(json.dumps(endpoints, indent=2))
            print_summary(endpoints, endpoints_file)
            while not stop.is_set():
                children.check_alive()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=2)
            print("\nStopping...", flush=True)
        finally:
            children.stop_all()


async def wyoming_endpoints(ha_url: str, token: str, entry_id: str) -> dict[str, Any]:
    """Where the integration's Wyoming bridges listen, read from its diagnostics; when they
    are not running, `{"down": ...}` with the reason from the integration's repair issue.

    They listen on every interface and announce the host's LAN address over zeroconf; the demo
    lists the loopback URI for local clients and the announced ones as well.
    """
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{ha_url}/api/diagnostics/config_entry/{entry_id}"
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(40):  # the bridges start right after the platforms
            async with session.get(url) as resp:
                if resp.status == 404:  # the entry is still being set up
                    await asyncio.sleep(0.5)
                    continue
                resp.raise_for_status()
                voice = (await resp.json())["data"].get("voice")
            if voice and voice.get("stt"):
                return {
                    "stt": voice["stt"].replace("0.0.0.0", "127.0.0.1"),
                    "tts": voice["tts"].replace("0.0.0.0", "127.0.0.1"),
                    "announced": voice.get("announced", {}),
                }
            await asyncio.sleep(0.5)
        # Not running: say why (the repair issue the integration raised, if any).
        issues = await websocket_call(session, ha_url, token, {"type": "repairs/list_issues"})
    reasons = [
        issue.get("translation_placeholders") or {}
        for issue in issues["issues"]
        if issue["domain"] == "spark_control" and issue["issue_id"].startswith("voice_port_in_use")
    ]
    return {"down": reasons[0] if reasons else {"error": "not running"}}


# The operations' entities, by the end of their unique ids (`<entry unique id>_<key>`).
OPERATION_ENTITIES = {
    "download_progress": "_download_progress",
    "download_status": "_download_status",
    "cancel_download": "_cancel_download",
    "software_update": "_spark_vllm_docker_update",
    "speech_container_update": "_speech_container_update",
}


async def operations_endpoints(ha_url: str, token: str, entry_id: str) -> dict[str, Any]:
    """Where to try each operation: the entities (with the update entities' versions) and the
    model to download from the catalog dialog."""
    async with aiohttp.ClientSession() as session:
        registry = await websocket_call(
            session, ha_url, token, {"type": "config/entity_registry/list"}
        )
        ours = [e for e in registry if e.get("config_entry_id") == entry_id]
        found: dict[str, Any] = {}
        for name, suffix in OPERATION_ENTITIES.items():
            entity_id = next(
                (e["entity_id"] for e in ours if str(e.get("unique_id")).endswith(suffix)), None
            )
            if entity_id is None:
                continue
            found[name] = {"entity_id": entity_id}
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{ha_url}/api/states/{entity_id}", headers=headers) as resp:
                if resp.status == 200:
                    state = await resp.json()
                    attributes = state["attributes"]
                    found[name]["state"] = state["state"]
                    for key in ("installed_version", "latest_version", "commits_behind"):
                        if key in attributes:
                            found[name][key] = attributes[key]
    found["add_model"] = {
        "where": "Settings → Devices & services → Spark Control → Demo cluster → Add model",
        "repo_id": DOWNLOAD_REPO,
        "bytes": DOWNLOAD_BYTES,
    }
    return found


def print_summary(endpoints: dict[str, Any], path: Path) -> None:
    print(f"\nSpark Control demo is up. Endpoints (also in {path}):")
    for node in endpoints["simulator"].get("nodes", []):
        print(f"  simulated node  ssh://{node.get('host')}:{node.get('ssh_port')}")
    for name, service in endpoints["simulator"].get("services", {}).items():
        print(f"  simulated {name:<8} {service['url']}")
    gateway = endpoints["gateway"]
    print(f"  gateway         {gateway['openai_base_url']}  (API key {gateway['api_key']})")
    if "home_assistant" in endpoints:
        ha = endpoints["home_assistant"]
        print(f"  Home Assistant  {ha['url']}  (user {ha['username']} / {ha['password']})")
        print(f"  dashboard       {ha['dashboard']}")
        wyoming = endpoints["wyoming"]
        for name in ("stt", "tts"):
            if name in wyoming:
                print(f"  wyoming {name:<7} {wyoming[name]}")
        if "down" in wyoming:
            down = wyoming["down"]
            ports = f" on ports {down['stt_port']}/{down['tts_port']}" if "stt_port" in down else ""
            print(
                f"  wyoming         DOWN: the voice bridges could not start{ports}: "
                f"{down.get('error', 'unknown error')} (Settings → Repairs offers other ports)"
            )
    if "operations" in endpoints:
        print_operations(endpoints["operations"])
    print("Press Ctrl-C to stop.", flush=True)


def print_operations(operations: dict[str, Any]) -> None:
    """Where to try the model download, the two updates and the speech container deploy."""
    print("  Operations to try:")
    add = operations["add_model"]
    progress = operations.get("download_progress", {}).get("entity_id", "the download sensor")
    print(
        f"    download      {add['where']} → A new model, repo id {add['repo_id']}: its "
        f"{add['bytes'] / 1e9:.1f} GB are on no node yet, so the dialog offers to download them "
        f"(progress there and on {progress})"
    )
    if software := operations.get("software_update"):
        print(
            f"    update        {software['entity_id']} (spark-vllm-docker): "
            f"{software.get('commits_behind')} commits behind, "
            f"{software.get('installed_version')} → {software.get('latest_version')}; "
            "Settings → Updates → Install pulls and rebuilds"
        )
    if speech := operations.get("speech_container_update"):
        print(
            f"    speech        {speech['entity_id']} (Parakeet container): "
            f"{speech.get('installed_version')} → {speech.get('latest_version')}; Install ships "
            "the build context over SFTP, builds, runs and waits for its health"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=2, help="simulated GPU nodes")
    parser.add_argument("--load-seconds", type=float, default=8.0, help="simulated model load time")
    parser.add_argument(
        "--download-seconds", type=float, default=60.0, help="simulated model download time"
    )
    parser.add_argument(
        "--build-seconds", type=float, default=15.0, help="simulated image build time"
    )
    parser.add_argument("--no-ha", action="store_true", help="skip Home Assistant")
    parser.add_argument("--demo-dir", default=str(DEFAULT_DEMO_DIR), help="state and logs")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
