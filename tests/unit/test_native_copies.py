"""What the engine copies or pickles of the rule core's values survives it, on the compiled
build as from source (ADR 41): mypyc's frozen dataclasses refused `copy.deepcopy` (the
console's preview copies the whole configuration; found by CI), so every value a
configuration or a member's state holds is copied here, both ways."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta

from loyalty.bench.cart import build_world
from loyalty.bench.codes import _promotions
from processors.rules.member import Config
from processors.simulation import Simulation
from tests.rules.test_challenges import challenge

NOW = datetime(2026, 1, 10, tzinfo=UTC)


def _config() -> Config:
    """Programmes, ~100 offers of every kind (reach, indexes), codes generated and uploaded,
    and a challenge."""
    world = build_world(offers=120, members=20, carts=10)
    config = Config()
    for event in [*world.config_events, *_promotions(50, datetime.now(UTC) - timedelta(days=1)),
                  challenge()]:  # fmt: skip
        config.apply(event)
    return config


def test_a_configuration_is_copied_deep_and_pickled() -> None:
    config = _config()
    for copied in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert [o.offer_id for o in copied.catalogue.for_sale(NOW)] == [
            o.offer_id for o in config.catalogue.for_sale(NOW)
        ]
        assert len(copied.catalogue) == len(config.catalogue)
        assert copied.promotions.terms.keys() == config.promotions.terms.keys()
        assert copied.challenges is not config.challenges
    assert copy.copy(config).catalogue is config.catalogue


def test_a_simulation_runs_on_a_copied_configuration() -> None:
    """As the console's preview runs it (`projections/console/preview.py`)."""
    world = build_world(offers=60, members=5, carts=5)
    config = _config()
    simulation = Simulation(config=copy.deepcopy(config))
    outputs = list(simulation.run(world.enrolments))
    assert outputs
    assert len(config.catalogue) == len(simulation.config.catalogue)
