"""Every scenario file in tests/scenarios holds when run through the simulator: the same rule
composition the worker runs (ADR 10). The integration suite runs the same files on the real
stack."""

from pathlib import Path

import pytest

from processors import scenarios
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
