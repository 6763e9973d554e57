"""What the engine copies or pickles of the rule core's values survives it, on the compiled
build as from source (ADR 41): mypyc's classes refused `copy.deepcopy` (the console's preview
copies the whole configuration; found by CI), so a configuration holding every kind of
value is copied and pickled here and must decide as the original does. (Members' states are
pydantic models: not compiled.)"""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta

from loyalty.bench.cart import START, build_world
from loyalty.bench.codes import _promotions
from processors.rules.member import Config
from processors.simulation import Simulation
from projections.api.cart_schemas import CartRequest
from tests.rules.test_challenges import challenge


def _config() -> Config:
    """Programmes, ~100 offers of every kind (reach, indexes), codes generated and uploaded,
    and a challenge."""
    world = build_world(offers=120, members=20, carts=10)
    config = Config()
    for event in [*world.config_events, *_promotions(50, datetime.now(UTC) - timedelta(days=1)),
                  challenge()]:  # fmt: skip
        config.apply(event)
    return config


def _codes(config: Config) -> dict[str, list[str]]:
    return {
        promotion: [code for codes, _ in issues for code in codes]
        for promotion, issues in config.promotions.generated.items()
    }


def test_a_configuration_is_copied_deep_and_pickled() -> None:
    config = _config()
    offers = [f"BENCH_{n:04d}" for n in range(120)]
    assert all(config.catalogue.get(offer) for offer in offers)
    reach = {offer: config.catalogue.reach(offer) for offer in offers}
    assert any(r is not None for r in reach.values())
    assert _codes(config)
    for copied in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert [copied.catalogue.get(offer) for offer in offers] == [
            config.catalogue.get(offer) for offer in offers
        ]
        assert {offer: copied.catalogue.reach(offer) for offer in offers} == reach
        assert _codes(copied) == _codes(config)
        assert copied.promotions.terms == config.promotions.terms
        assert copied.challenges == config.challenges
        assert copied.challenges is not config.challenges
    assert copy.copy(config).catalogue is config.catalogue


def test_a_simulation_runs_on_a_copied_configuration() -> None:
    """As the console's preview runs it (`projections/console/preview.py`)."""
    world = build_world(offers=60, members=5, carts=5)
    purchases = [
        CartRequest.model_validate(body).transaction(event_id=f"tx-{n}", occurred_at=START)
        for n, body in enumerate(world.carts)
        if body.get("member_id")
    ]
    events = [*world.enrolments, *purchases]
    on_copy = Simulation(config=copy.deepcopy(_config())).run(events)
    on_fresh = Simulation(config=_config()).run(events)
    assert len(on_copy) > len(world.enrolments)
    assert [e.model_dump_json() for e in on_copy] == [e.model_dump_json() for e in on_fresh]
