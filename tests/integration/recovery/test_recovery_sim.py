"""Fault injection against the simulator: the recovery policy with real HTTP probes and SSH.

The restart command goes through the library's `ClusterClient.service_action` over real SSH;
the simulated `docker restart` clears the injected wedge.
"""

from __future__ import annotations

import asyncio

import aiohttp

from custom_components.spark_control.sparklib.cluster import ClusterClient
from custom_components.spark_control.sparklib.probes import DeepProber
from custom_components.spark_control.sparklib.recovery import (
    RecoveryEvent,
    RecoveryManager,
    RecoveryTuning,
    RestartBudget,
    RestartWaiter,
    ServiceHealth,
)
from tests.integration.recovery.conftest import base_urls
from tests.sim import SimCluster

RESTART_PARAKEET = "docker restart parakeet-asr"


def _manager(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    client: ClusterClient,
    clip: bytes,
    events: list[RecoveryEvent],
    *,
    limit: int = 3,
    timeout: float = 30.0,
    wait_for_restart: RestartWaiter | None = None,
) -> RecoveryManager:
    async def restart(service: str) -> None:
        await client.service_action(service, "restart")

    return RecoveryManager(
        services=("vllm", "parakeet", "magpie"),
        prober=DeepProber(session, base_urls(sim), clip_wav=clip, timeout=timeout),
        restarter=restart,
        wait_for_restart=wait_for_restart,
        budget=RestartBudget(limit, 1800),
        on_event=events.append,
        # A restarted service's recovery is a positive wait: a deadline a loaded machine keeps.
        tuning=RecoveryTuning(recovery_timeout=30, health_poll_interval=0.05),
    )


def _kinds(events: list[RecoveryEvent]) -> list[str]:
    return [event.kind for event in events]


def _restarts(sim: SimCluster) -> int:
    return sim.nodes[1].commands.count(RESTART_PARAKEET)


async def test_single_wedge_one_restart_then_recovered(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    cluster_client: ClusterClient,
    probe_clip: bytes,
) -> None:
    events: list[RecoveryEvent] = []
    manager = _manager(sim, session, cluster_client, probe_clip, events)
    sim.faults.wedge("parakeet")

    outcome = await manager.report_wedge("parakeet", "500 from Parakeet", "gateway")

    assert outcome.probe.health is ServiceHealth.WEDGED
    assert outcome.final.health is ServiceHealth.HEALTHY
    assert outcome.restarts == 1
    assert _restarts(sim) == 1
    assert _kinds(events) == ["wedge_detected", "service_restarted", "service_recovered"]
    detected, restarted, recovered = (event.data for event in events)
    assert detected["source"] == "gateway"
    assert detected["reported_error"] == "500 from Parakeet"
    assert "CUBLAS_STATUS_EXECUTION_FAILED" in detected["error"]
    assert restarted["attempt"] == 1
    assert restarted["budget_left"] == 2
    assert recovered["downtime"] > 0
    assert manager.state("parakeet").wedged is False
    assert manager.state("parakeet").last_wedge_at is not None

    # Nothing was lost: the service transcribes again right after the recovered event.
    assert (await manager.deep_check("parakeet")).final.health is ServiceHealth.HEALTHY
    assert _restarts(sim) == 1


async def test_wedge_storm_three_restarts_then_suppressed(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    cluster_client: ClusterClient,
    probe_clip: bytes,
) -> None:
    events: list[RecoveryEvent] = []
    manager = _manager(sim, session, cluster_client, probe_clip, events)

    outcomes = []
    for _ in range(4):
        sim.faults.wedge("parakeet")  # the GPU wedges again after every restart
        outcomes.append(await manager.report_wedge("parakeet", "500", "wyoming"))

    assert [o.restarts for o in outcomes] == [1, 1, 1, 0]
    assert outcomes[-1].suppressed
    assert _restarts(sim) == 3
    assert _kinds(events).count("service_restarted") == 3
    assert _kinds(events).count("service_recovered") == 3
    assert _kinds(events)[-2:] == ["wedge_detected", "restart_suppressed"]
    suppressed = events[-1].data
    assert suppressed["restarts_in_window"] == 3
    assert suppressed["limit"] == 3
    assert suppressed["window_minutes"] == 30
    assert suppressed["retry_at"] is not None
    state = manager.state("parakeet")
    assert state.wedged
    assert state.suppressed

    # Checking a suppressed service again is quiet: no new events, no restart.
    seen = len(events)
    again = await manager.report_wedge("parakeet", "500", "gateway")
    assert again.suppressed
    assert again.restarts == 0
    assert len(events) == seen
    assert _restarts(sim) == 3

    # A manual restart is always allowed; the next check sees it working and reports it.
    await cluster_client.service_action("parakeet", "restart")
    await sim.parakeet.wait_serving()  # booted after the restart
    outcome = await manager.deep_check("parakeet", "manual")
    assert outcome.final.health is ServiceHealth.HEALTHY
    assert events[-1].kind == "service_recovered"
    assert not manager.state("parakeet").suppressed


async def test_hang_is_classified_wedged_and_restarted(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    cluster_client: ClusterClient,
    probe_clip: bytes,
) -> None:
    events: list[RecoveryEvent] = []
    manager = _manager(sim, session, cluster_client, probe_clip, events, timeout=3)
    sim.faults.hang("magpie")

    outcome = await manager.deep_check("magpie")

    assert outcome.probe.health is ServiceHealth.WEDGED
    assert outcome.probe.detail == "no answer within 3 s"
    assert outcome.probe.elapsed >= 3
    # A restarted process has a fresh CUDA context: the hang is gone.
    assert outcome.restarts == 1
    assert sim.nodes[1].commands.count("docker restart magpie-tts") == 1
    assert outcome.final.health is ServiceHealth.HEALTHY
    assert _kinds(events) == ["wedge_detected", "service_restarted", "service_recovered"]


async def test_ssh_dropped_during_restart_gives_an_error_event(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    cluster_client: ClusterClient,
    probe_clip: bytes,
) -> None:
    events: list[RecoveryEvent] = []
    manager = _manager(sim, session, cluster_client, probe_clip, events)
    sim.faults.wedge("parakeet")
    sim.faults.drop_ssh_mid_command(True)
    starts_before = sim.containers["parakeet-asr"].starts

    outcome = await manager.report_wedge("parakeet", "500", "gateway")

    assert _kinds(events) == ["wedge_detected", "restart_failed"]
    assert events[-1].data["error"]
    assert outcome.restart_error == events[-1].data["error"]
    assert outcome.restarts == 0
    assert manager.state("parakeet").wedged

    # SSH comes back. The cut may have come after Docker got the restart; either way the next
    # check ends with the service working and a recovered event.
    sim.faults.drop_ssh_mid_command(False)
    container = sim.containers["parakeet-asr"]
    restarted_anyway = container.restarts == 1
    if restarted_anyway:
        # Docker finishes that restart (stop, then start) and the new process boots.
        await container.wait_until(lambda c: c.starts > starts_before)
        await sim.parakeet.wait_serving()
    outcome = await manager.deep_check("parakeet")
    assert outcome.final.health is ServiceHealth.HEALTHY
    assert outcome.restarts == (0 if restarted_anyway else 1)
    assert events[-1].kind == "service_recovered"
    assert not manager.state("parakeet").wedged


async def test_concurrent_reports_start_one_probe_and_one_restart(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    cluster_client: ClusterClient,
    probe_clip: bytes,
) -> None:
    events: list[RecoveryEvent] = []
    manager = _manager(sim, session, cluster_client, probe_clip, events)
    sim.faults.wedge("parakeet")

    outcomes = await asyncio.gather(
        *(manager.report_wedge("parakeet", f"500 #{n}", "gateway") for n in range(10)),
        manager.deep_check("parakeet", "periodic"),
    )
    assert manager.probes_started == 1
    assert len({id(outcome) for outcome in outcomes}) == 1
    assert _restarts(sim) == 1
    assert _kinds(events) == ["wedge_detected", "service_restarted", "service_recovered"]


async def test_down_service_is_not_restarted(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    cluster_client: ClusterClient,
    probe_clip: bytes,
) -> None:
    events: list[RecoveryEvent] = []
    manager = _manager(sim, session, cluster_client, probe_clip, events)
    await cluster_client.service_action("magpie", "stop")

    outcome = await manager.report_wedge("magpie", "connection refused", "gateway")

    assert outcome.final.health is ServiceHealth.DOWN
    assert events == []
    assert "docker restart magpie-tts" not in sim.nodes[1].commands


async def test_a_restart_under_way_that_does_not_help_is_followed_by_our_own(
    sim: SimCluster,
    session: aiohttp.ClientSession,
    cluster_client: ClusterClient,
    probe_clip: bytes,
) -> None:
    """The check waits once for a restart someone else had under way; the service is still
    wedged after it, so the check restarts it itself (one slot of the budget) and recovers."""
    events: list[RecoveryEvent] = []
    waits: list[str] = []

    async def another_restart_ended(service: str) -> bool:
        waits.append(service)
        return True  # one ran (and left the wedge in place)

    manager = _manager(
        sim, session, cluster_client, probe_clip, events, wait_for_restart=another_restart_ended
    )
    sim.faults.wedge("parakeet")

    outcome = await manager.report_wedge("parakeet", "500 from Parakeet", "gateway")

    assert waits == ["parakeet"]  # once per check
    assert outcome.final.health is ServiceHealth.HEALTHY
    assert outcome.restarts == 1
    assert _restarts(sim) == 1
    assert manager.budget.used("parakeet") == 1
    assert _kinds(events) == ["wedge_detected", "service_restarted", "service_recovered"]
