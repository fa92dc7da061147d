"""Single-flight: concurrent callers for one key share one running task."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.spark_control.sparklib.recovery import SingleFlight


async def test_concurrent_callers_join_one_task() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return calls

    waiters = [asyncio.create_task(flight.run("parakeet", work)) for _ in range(5)]
    await asyncio.sleep(0)
    assert flight.running("parakeet")
    release.set()
    assert await asyncio.gather(*waiters) == [1, 1, 1, 1, 1]
    assert calls == 1
    assert flight.started == 1
    await asyncio.sleep(0)
    assert not flight.running("parakeet")

    # Once finished, the next call starts fresh work.
    assert await flight.run("parakeet", work) == 2
    assert flight.started == 2


async def test_different_keys_run_in_parallel() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    both_running = asyncio.Barrier(2)

    async def work(name: str) -> str:
        await both_running.wait()
        return name

    results = await asyncio.wait_for(
        asyncio.gather(
            flight.run("parakeet", lambda: work("parakeet")),
            flight.run("magpie", lambda: work("magpie")),
        ),
        timeout=30,  # a guard against the deadlock this checks, not a time limit
    )
    assert results == ["parakeet", "magpie"]


async def test_one_caller_cancelling_does_not_cancel_the_shared_work() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    impatient = asyncio.create_task(flight.run("k", work))
    patient = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    release.set()
    assert await patient == "done"


async def test_errors_reach_every_caller_and_aclose_cancels() -> None:
    flight: SingleFlight[str, None] = SingleFlight()

    async def boom() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("probe crashed")

    results = await asyncio.gather(
        flight.run("k", boom), flight.run("k", boom), return_exceptions=True
    )
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]

    async def forever() -> None:
        await asyncio.Event().wait()

    waiter = asyncio.create_task(flight.run("k", forever))
    await asyncio.sleep(0)
    await flight.aclose()
    assert not flight.running("k")
    with pytest.raises(asyncio.CancelledError):
        await waiter
