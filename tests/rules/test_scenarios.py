"""Every scenario file in tests/scenarios holds when run through the simulator: the same rule
composition the worker runs (ADR 10). The integration suite runs the same files on the real
stack."""

from pathlib import Path

import pytest

from processors import scenarios
from processors.rules import member
from processors.simulation import Simulation

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario_holds_in_the_simulator(path: Path) -> None:
    scenario = scenarios.load(path)
    simulation = Simulation()
    simulation.run(scenario.config)

    outputs = simulation.run(scenario.events)

    assert scenarios.check(scenario, outputs) == [], "\n".join(simulation.notes)


def _outputs(path: Path) -> list[str]:
    scenario = scenarios.load(path)
    simulation = Simulation()
    simulation.run(scenario.config)
    return [event.model_dump_json() for event in simulation.run(scenario.events)]


@pytest.mark.parametrize("path", SCENARIOS[:3], ids=[path.stem for path in SCENARIOS[:3]])
def test_a_simulation_gives_identical_events_every_time(path: Path) -> None:
    assert _outputs(path) == _outputs(path)


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario_decides_alike_with_every_state_saved_after_every_event(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the worker does after each batch: every member's state saved after each event, and
    read back from its bytes after every other one. A saved state reuses the stored line of
    each purchase record whose revision did not move (`member.dump_state`): each reused line
    is compared with a fresh dump here, so a rule that changes a record without its revision
    fails this test."""
    monkeypatch.setattr(member, "VERIFY_SAVED", True)
    scenario = scenarios.load(path)
    simulation = Simulation()
    simulation.run(scenario.config)
    outputs: list[str] = []
    for n, event in enumerate(scenario.events):
        outputs += [output.model_dump_json() for output in simulation.feed(event)]
        for key, state in list(simulation.members.items()):
            raw = member.dump_state(state)
            if n % 2:
                simulation.members[key] = member.load_state(key, raw)

    assert outputs == _outputs(path)
