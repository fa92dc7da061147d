"""The restart budget: a sliding window per service whose state survives serialisation."""

from __future__ import annotations

import json

import pytest

from custom_components.spark_control.sparklib.recovery import RestartBudget


class FakeClock:
    """A settable wall clock (the budget's only input besides its calls)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_three_per_window_then_refused_until_the_oldest_leaves() -> None:
    clock = FakeClock()
    budget = RestartBudget(3, 1800, clock=clock)
    decisions = []
    for _ in range(3):
        decisions.append(budget.try_acquire("parakeet"))
        clock.now += 60
    assert [(d.allowed, d.attempt, d.remaining) for d in decisions] == [
        (True, 1, 2),
        (True, 2, 1),
        (True, 3, 0),
    ]
    refused = budget.try_acquire("parakeet")
    assert not refused.allowed
    assert refused.remaining == 0
    first_restart = clock.now - 180
    assert refused.retry_at == pytest.approx(first_restart + 1800)

    clock.now = first_restart + 1800  # the first restart slides out of the window
    assert budget.remaining("parakeet") == 1
    assert budget.try_acquire("parakeet").allowed


def test_services_have_separate_budgets() -> None:
    budget = RestartBudget(1, 600, clock=FakeClock())
    assert budget.try_acquire("parakeet").allowed
    assert not budget.try_acquire("parakeet").allowed
    assert budget.try_acquire("magpie").allowed
    assert budget.used("vllm") == 0


def test_limit_zero_disables_automatic_restarts() -> None:
    budget = RestartBudget(0, 600, clock=FakeClock())
    decision = budget.try_acquire("parakeet")
    assert not decision.allowed
    assert decision.retry_at is None


def test_round_trip_through_json_keeps_the_window() -> None:
    clock = FakeClock()
    budget = RestartBudget(3, 1800, clock=clock)
    budget.try_acquire("parakeet")
    clock.now += 10
    budget.try_acquire("parakeet")
    saved = json.loads(json.dumps(budget.to_dict()))

    clock.now += 100
    restored = RestartBudget.from_dict(saved, limit=3, window=1800, clock=clock)
    assert restored.used("parakeet") == 2
    assert restored.remaining("parakeet") == 1


def test_restored_budget_forgets_restarts_older_than_the_window() -> None:
    clock = FakeClock()
    budget = RestartBudget(3, 1800, clock=clock)
    budget.try_acquire("magpie")
    clock.now += 1801
    restored = RestartBudget.from_dict(budget.to_dict(), limit=3, window=1800, clock=clock)
    assert restored.used("magpie") == 0
    assert restored.to_dict()["restarts"] == {"magpie": []}


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        {},
        {"restarts": "x"},
        {"restarts": {"parakeet": "x"}},
        {"restarts": {"p": [True, "1"]}},
    ],
)
def test_unreadable_saved_state_starts_empty(garbage: object) -> None:
    budget = RestartBudget.from_dict(garbage, limit=3, window=60, clock=FakeClock())  # type: ignore[arg-type]
    assert budget.remaining("parakeet") == 3
    assert budget.remaining("p") == 3


def test_reconfigure_keeps_history_and_applies_new_limit() -> None:
    budget = RestartBudget(3, 1800, clock=FakeClock())
    budget.try_acquire("parakeet")
    budget.try_acquire("parakeet")
    budget.reconfigure(2, 1800)
    assert not budget.try_acquire("parakeet").allowed
    with pytest.raises(ValueError):
        budget.reconfigure(1, 0)
    with pytest.raises(ValueError):
        RestartBudget(-1, 10)


def test_a_service_can_have_its_own_budget() -> None:
    """vLLM's budget (2 per hour) is separate from the speech services' (3 per 30 min) and
    survives a save and load."""
    now = [1000.0]
    budget = RestartBudget(3, 1800, clock=lambda: now[0], per_service={"vllm": (2, 3600)})
    assert [budget.try_acquire("vllm").allowed for _ in range(3)] == [True, True, False]
    assert [budget.try_acquire("parakeet").allowed for _ in range(4)] == [True] * 3 + [False]
    now[0] += 1900  # past the speech window, inside vLLM's
    assert budget.remaining("parakeet") == 3
    assert budget.remaining("vllm") == 0
    assert budget.next_slot("vllm") == 1000.0 + 3600
    again = RestartBudget.from_dict(
        budget.to_dict(),
        limit=3,
        window=1800,
        clock=lambda: now[0],
        per_service={"vllm": (2, 3600)},
    )
    assert (again.limit_for("vllm"), again.window_for("vllm"), again.used("vllm")) == (2, 3600, 2)
