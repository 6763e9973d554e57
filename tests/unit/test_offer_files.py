"""Offer files: product people's YAML and JSON become OfferPublished events, and every problem
is reported with its file, offer, field path and reason (DESIGN.md §5.10, §6; seed 003).

Each test starts from the contract's published example offer, writes it as a file, changes
one thing and checks the exact message a product person would read.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from loyalty import cli_offers
from processors.contract.config import OfferPublished
from processors.contract.offer_definition import LIST_MAX
from processors.offer_files import (
    OfferFiles,
    Severity,
    content_event_id,
    find_offer_files,
    load_offer_files,
    offers_from_data,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "schemas" / "examples" / "OfferPublished.json"
EXAMPLE_FILES = REPO / "examples" / "offers"
PUBLISHED_AT = datetime(2026, 10, 28, 15, 30, tzinfo=UTC)


def an_offer(**changes) -> dict:
    """The contract's example offer as a product person writes it: no envelope fields."""
    body = json.loads(EXAMPLE.read_text())
    for envelope in ("type", "event_id", "occurred_at"):
        del body[envelope]
    return {**body, **changes}


def with_copy(offer: dict, locale: str, **fields) -> dict:
    for item in offer["localized_copy"]:
        if item["locale"] == locale:
            item.update(fields)
    return offer


def write(directory: Path, name: str, data: object) -> Path:
    path = directory / name
    if path.suffix == ".json":
        path.write_text(json.dumps(data, ensure_ascii=False))
    else:
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def load(*paths: Path) -> OfferFiles:
    return load_offer_files(list(paths), published_at=PUBLISHED_AT)


def messages(loaded: OfferFiles, severity: Severity = Severity.ERROR) -> list[str]:
    return [str(p) for p in loaded.problems if p.severity is severity]


def errors_of(tmp_path: Path, offer: dict, name: str = "offer.yaml") -> list[str]:
    return messages(load(write(tmp_path, name, offer)))


# --- what a valid file becomes -----------------------------------------------------------


def test_a_file_without_envelope_fields_becomes_the_published_event(tmp_path):
    loaded = load(write(tmp_path, "coffee.yaml", an_offer()))

    assert loaded.is_valid
    assert not loaded.problems
    [event] = loaded.events
    expected = OfferPublished.model_validate(
        {**an_offer(), "event_id": event.event_id, "occurred_at": PUBLISHED_AT}
    )
    assert event == expected
    assert event.occurred_at == PUBLISHED_AT


def test_the_event_id_derives_from_the_content_alone(tmp_path):
    first = load(write(tmp_path, "a.yaml", an_offer())).events[0]
    again = load_offer_files(
        [write(tmp_path, "b.json", an_offer())], published_at=datetime(2027, 1, 1, tzinfo=UTC)
    ).events[0]
    changed = load(write(tmp_path, "c.yaml", an_offer(rank=3))).events[0]

    assert first.event_id == again.event_id == content_event_id(first)
    assert first.event_id.startswith("offer-COFFEE_100_PER_10_NOV26-")
    assert changed.event_id != first.event_id


def test_envelope_fields_given_in_the_file_are_kept(tmp_path):
    offer = an_offer(type="OfferPublished", event_id="cfg-1", occurred_at="2026-10-01T12:00:00Z")

    [event] = load(write(tmp_path, "offer.yaml", offer)).events

    assert event.event_id == "cfg-1"
    assert event.occurred_at == datetime(2026, 10, 1, 12, tzinfo=UTC)


def test_a_yaml_file_may_hold_a_list_of_offers(tmp_path):
    offers = [an_offer(offer_id="FIRST_OFFER"), an_offer(offer_id="SECOND_OFFER", rank=5)]

    loaded = load(write(tmp_path, "offers.yaml", offers))

    assert [(r.index, r.offer_id) for r in loaded.results] == [
        (1, "FIRST_OFFER"),
        (2, "SECOND_OFFER"),
    ]
    assert [e.rank for e in loaded.events] == [2, 5]


def test_yaml_decimals_are_read_exactly(tmp_path):
    offer = an_offer()
    offer["reward"] = {"kind": "BASE_MULTIPLIER", "multiplier": 1.5}
    offer["behaviours"][0]["accumulation"] = "SINGLE_TRANSACTION"
    path = tmp_path / "offer.yaml"
    path.write_text(yaml.safe_dump(offer, allow_unicode=True).replace("'1.5'", "1.5"))

    [event] = load(path).events

    assert event.reward.multiplier == Decimal("1.5")


def test_the_example_offer_files_are_valid():
    loaded = load(*find_offer_files([EXAMPLE_FILES]))

    assert messages(loaded) == []
    assert len(loaded.events) >= 5
    kinds = {e.reward.kind.value for e in loaded.events}
    assert kinds == {"FLAT_POINTS", "BASE_MULTIPLIER", "TIER_MULTIPLIER", "DISCOUNT"}


# --- product lists -----------------------------------------------------------------------


def test_a_product_list_is_merged_into_skus_and_repeats_are_kept_once(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "coffee.csv").write_text("productCode\nC-1\n\nC-2\nC-1\nC-3\n")
    offer = an_offer()
    offer["behaviours"][0]["products"]["skus"] = ["C-3", "C-0"]
    offer["behaviours"][0]["products"]["skus_file"] = "lists/coffee.csv"

    loaded = load(write(tmp_path, "offer.yaml", offer))

    assert messages(loaded) == []
    csv = tmp_path / "lists" / "coffee.csv"
    where = f"{tmp_path}/offer.yaml: offer 1 (COFFEE_100_PER_10_NOV26): "
    assert messages(loaded, Severity.WARNING) == [
        f"{where}behaviours[0].products.skus_file: {csv} row 5: 'C-1' repeats row 2; kept once",
        f"{where}behaviours[0].products.skus_file: 'C-3' is also in skus; kept once",
    ]
    assert loaded.events[0].behaviours[0].products.skus == ["C-3", "C-0", "C-1", "C-2"]


def test_excluded_skus_may_come_from_a_product_list_too(tmp_path):
    (tmp_path / "machines.csv").write_text("productCode,name\nM-1,Espresso machine\nM-2,Grinder\n")
    offer = an_offer()
    offer["behaviours"][0]["products"]["excluded_skus_file"] = "machines.csv"

    [event] = load(write(tmp_path, "offer.json", offer)).events

    assert event.behaviours[0].products.excluded_skus == ["M-1", "M-2"]


def test_a_product_list_without_its_header_is_refused(tmp_path):
    (tmp_path / "coffee.csv").write_text("C-1\nC-2\n")
    offer = an_offer()
    offer["behaviours"][0]["products"]["skus_file"] = "coffee.csv"

    assert errors_of(tmp_path, offer) == [
        f"{tmp_path}/offer.yaml: offer 1 (COFFEE_100_PER_10_NOV26): "
        f"behaviours[0].products.skus_file: {tmp_path}/coffee.csv row 1: no productCode header "
        "(found 'C-1'); the first row names the column: productCode"
    ]


TOO_MANY = "productCode\n" + "\n".join(f"P{n}" for n in range(LIST_MAX + 1))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty file; expected a productCode header, one code a row"),
        ("productCode\n\n", "no codes under the productCode header"),
        (TOO_MANY, f"{LIST_MAX + 1} codes, at most {LIST_MAX}"),
    ],
)
def test_an_empty_or_oversized_product_list_is_refused(tmp_path, content, reason):
    (tmp_path / "list.csv").write_text(content)
    offer = an_offer()
    offer["behaviours"][0]["products"]["skus_file"] = "list.csv"

    [error] = errors_of(tmp_path, offer)

    assert error.endswith(f"behaviours[0].products.skus_file: {tmp_path}/list.csv: {reason}")


def test_a_missing_product_list_names_the_path_it_looked_for(tmp_path):
    offer = an_offer()
    offer["behaviours"][0]["products"]["skus_file"] = "nowhere.csv"

    [error] = errors_of(tmp_path, offer)

    assert error.endswith(f"skus_file: {tmp_path}/nowhere.csv: no such file")


# --- one problem, one precise message ----------------------------------------------------


def test_a_non_ascii_offer_id_is_refused(tmp_path):
    assert errors_of(tmp_path, an_offer(offer_id="CAFÉ_10")) == [
        f"{tmp_path}/offer.yaml: offer 1 (CAFÉ_10): offer_id: 'CAFÉ_10' has a non-ASCII "
        "character 'É'; an offer id is 3 to 128 ASCII letters, digits or underscores"
    ]


def test_what_is_echoed_has_its_control_characters_escaped_and_long_values_cut(tmp_path):
    hostile = "\x1b]0;pwned\x07\x1b[2J" + "A" * 100_000
    shown = errors_of(tmp_path, an_offer(offer_id=hostile, rank="\x1b[31mred"), "o.json")
    assert shown  # the id and the rank are refused...
    for message in shown:  # ...and nothing of them reaches a terminal raw, or in full
        assert "\x1b" not in message
        assert "\x07" not in message
        assert len(message) < 1_000
    assert any("\\x1b]0;pwned\\x07" in message for message in shown)
    assert any("(100014 characters)" in message for message in shown)


def test_a_too_short_offer_id_is_refused(tmp_path):
    assert errors_of(tmp_path, an_offer(offer_id="AB")) == [
        f"{tmp_path}/offer.yaml: offer 1 (AB): offer_id: 'AB' is 2 characters, at least 3"
    ]


def test_copy_longer_than_its_limit_is_refused_per_locale(tmp_path):
    offer = with_copy(an_offer(), "fr", headline="é" * 97)

    assert errors_of(tmp_path, offer) == [
        f"{tmp_path}/offer.yaml: offer 1 (COFFEE_100_PER_10_NOV26): "
        "localized_copy[fr].headline: 97 characters, at most 80"
    ]


def test_an_offer_without_french_copy_is_refused(tmp_path):
    offer = an_offer()
    offer["localized_copy"] = [c for c in offer["localized_copy"] if c["locale"] == "en"]

    assert errors_of(tmp_path, offer) == [
        f"{tmp_path}/offer.yaml: offer 1 (COFFEE_100_PER_10_NOV26): "
        "localized_copy: no fr copy; every offer has copy in en and fr"
    ]


def test_a_display_date_after_the_start_is_refused(tmp_path):
    offer = an_offer()
    offer["schedule"]["display_at"] = "2026-11-03T00:00:00Z"

    assert errors_of(tmp_path, offer) == [
        f"{tmp_path}/offer.yaml: offer 1 (COFFEE_100_PER_10_NOV26): schedule.display_at: "
        "2026-11-03T00:00:00Z is after starts_at 2026-11-02T05:00:00Z; members see an offer on "
        "or before its start (leave display_at out to show it at the start)"
    ]


@pytest.mark.parametrize("rank", [0, 10])
def test_a_rank_outside_1_to_9_is_refused(tmp_path, rank):
    assert errors_of(tmp_path, an_offer(rank=rank)) == [
        f"{tmp_path}/offer.yaml: offer 1 (COFFEE_100_PER_10_NOV26): "
        f"rank: {rank}, must be 1 to 9 (1 is the top)"
    ]


def test_an_unknown_field_is_refused_with_the_field_it_may_mean(tmp_path):
    offer = with_copy(an_offer(), "en", headlin="Typo")

    assert errors_of(tmp_path, offer) == [
        f"{tmp_path}/offer.yaml: offer 1 (COFFEE_100_PER_10_NOV26): "
        "localized_copy[en].headlin: unknown field; did you mean headline?"
    ]


def test_the_models_own_reasons_are_reported_at_the_field_they_concern(tmp_path):
    offer = with_copy(an_offer(), "en", short_description="<b>Bold</b> savings")
    offer["behaviours"][0]["spend_min_cents"] = "ten dollars"
    offer["reward"]["kind"] = "FLAT"

    assert errors_of(tmp_path, offer, "offer.json") == [
        f"{tmp_path}/offer.json: offer 1 (COFFEE_100_PER_10_NOV26): "
        "localized_copy[en].short_description: must be plain text, without HTML: found '<b>'",
        f"{tmp_path}/offer.json: offer 1 (COFFEE_100_PER_10_NOV26): "
        "behaviours[0].spend_min_cents: Input should be a valid integer (got 'ten dollars')",
        f"{tmp_path}/offer.json: offer 1 (COFFEE_100_PER_10_NOV26): "
        "reward.kind: 'FLAT' is not one of FLAT_POINTS, BASE_MULTIPLIER, TIER_MULTIPLIER, "
        "DISCOUNT, REWARD",
    ]


def test_unknown_symbols_are_for_old_readers_not_for_files(tmp_path):
    offer = an_offer()
    offer["activation"]["kind"] = "UNKNOWN"

    [error] = errors_of(tmp_path, offer)

    assert error.endswith(
        "activation.kind: UNKNOWN is what older readers see for newer symbols; use AUTOMATIC, "
        "COUPON_CODE, LOAD_TO_CARD, PROMOTION_CODE"
    )


# --- every problem, in every file --------------------------------------------------------


def test_every_problem_of_every_offer_and_file_is_reported(tmp_path):
    first = with_copy(an_offer(offer_id="AB", rank=12), "fr", headline="x" * 81)
    first["localized_copy"][0]["short_description"] = "<i>x</i>"
    second = an_offer(offer_id="SECOND_OK")
    good = write(tmp_path, "good.json", an_offer(offer_id="THIRD_OK"))
    bad = write(tmp_path, "bad.yaml", [first, second])
    broken = tmp_path / "broken.yaml"
    broken.write_text("offer_id: X\nrank: [1,\n")

    loaded = load(good, bad, broken, tmp_path / "missing.yaml", tmp_path / "notes.txt")

    where = f"{tmp_path}/bad.yaml: offer 1 (AB)"
    assert messages(loaded) == [
        f"{where}: offer_id: 'AB' is 2 characters, at least 3",
        f"{where}: rank: 12, must be 1 to 9 (1 is the top)",
        f"{where}: localized_copy[fr].headline: 81 characters, at most 80",
        f"{where}: localized_copy[en].short_description: must be plain text, without HTML: "
        "found '<i>'",
        f"{broken}: line 3, column 1: not YAML: expected the node content, but found "
        "'<stream end>'",
        f"{tmp_path}/missing.yaml: no such file",
        f"{tmp_path}/notes.txt: not an offer file: use .yaml, .yml, .json",
    ]
    assert [e.offer_id for e in loaded.events] == ["THIRD_OK", "SECOND_OK"]
    assert not loaded.is_valid


def test_an_offer_id_defined_twice_across_the_files_is_refused(tmp_path):
    first = write(tmp_path, "a.yaml", an_offer())
    second = write(tmp_path, "b.json", [an_offer(offer_id="OTHER_OFFER"), an_offer(rank=4)])

    loaded = load(first, second)

    assert messages(loaded) == [
        f"{second}: offer 2 (COFFEE_100_PER_10_NOV26): offer_id: COFFEE_100_PER_10_NOV26 is "
        f"also defined in {first} (offer 1); an offer_id names one offer"
    ]
    assert [e.offer_id for e in loaded.events] == ["COFFEE_100_PER_10_NOV26", "OTHER_OFFER"]


def test_a_key_given_twice_is_refused_rather_than_silently_overwritten(tmp_path):
    path = tmp_path / "offer.yaml"
    path.write_text("offer_id: A_B_C\nrank: 1\nrank: 2\n")

    assert messages(load(path)) == [
        f"{path}: line 3, column 1: key 'rank' repeats line 2: the second would silently win"
    ]


def test_offers_already_parsed_are_checked_the_same_way(tmp_path):
    loaded = offers_from_data(
        [an_offer(), "not an offer"],
        file="scenario.yaml given.offers",
        base_dir=tmp_path,
        published_at=PUBLISHED_AT,
    )

    assert messages(loaded) == [
        "scenario.yaml given.offers: offer 2: expected a mapping of offer fields, got a str"
    ]
    assert len(loaded.events) == 1


# --- the commands, without Kafka ---------------------------------------------------------


def test_validate_prints_one_line_per_valid_offer_and_exits_1_on_any_error(tmp_path):
    good = write(tmp_path, "good.yaml", an_offer())
    bad = write(tmp_path, "bad.yaml", an_offer(offer_id="BAD_RANK", rank=0))

    result = CliRunner().invoke(cli_offers.offers, ["validate", str(good), str(bad)])

    assert result.exit_code == 1
    assert result.stdout == (
        f"ok {good}: offer 1 (COFFEE_100_PER_10_NOV26): SPEND → FLAT_POINTS, rank 2, "
        "2026-11-02 05:00Z to 2026-11-30 05:00Z\n"
    )
    assert f"error: {bad}: offer 1 (BAD_RANK): rank: 0, must be 1 to 9" in result.stderr
    assert "1 valid offer(s), 1 invalid, 1 error(s), 0 warning(s)" in result.stderr


def test_validate_exits_0_when_every_offer_is_valid():
    result = CliRunner().invoke(cli_offers.offers, ["validate", str(EXAMPLE_FILES)])

    assert result.exit_code == 0, result.output
    offers = load(*find_offer_files([EXAMPLE_FILES])).results
    assert [line.split("): ")[0] for line in result.stdout.splitlines()] == [
        f"ok {r.file}: offer {r.index} ({r.offer_id}" for r in offers
    ]


def test_validate_json_is_machine_readable(tmp_path):
    bad = write(tmp_path, "bad.yaml", an_offer(offer_id="AB"))

    result = CliRunner().invoke(cli_offers.offers, ["validate", "--json", str(bad)])

    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["valid"] is False
    assert report["offers"] == [
        {"file": str(bad), "index": 1, "offer_id": "AB", "valid": False, "event_id": None}
    ]
    assert report["problems"] == [
        {
            "severity": "error",
            "file": str(bad),
            "offer_index": 1,
            "offer_id": "AB",
            "path": "offer_id",
            "reason": "'AB' is 2 characters, at least 3",
            "message": f"{bad}: offer 1 (AB): offer_id: 'AB' is 2 characters, at least 3",
        }
    ]


def test_publish_produces_nothing_when_any_file_is_invalid(tmp_path, monkeypatch):
    produced = []

    async def record(settings, events, codec=None):
        produced.extend(events)
        return len(produced)

    monkeypatch.setattr(cli_offers, "publish_events", record)
    good = write(tmp_path, "good.yaml", an_offer())
    bad = write(tmp_path, "bad.yaml", an_offer(offer_id="AB"))

    result = CliRunner().invoke(cli_offers.offers, ["publish", str(good), str(bad)])

    assert result.exit_code == 1
    assert produced == []
    assert "nothing published" in result.stderr


def test_a_limit_too_large_for_the_contract_is_refused_in_the_file_not_when_encoded(tmp_path):
    offer = an_offer()
    offer["usage"] = {**offer.get("usage", {}), "uses_total_max": 2**63}

    problems = errors_of(tmp_path, offer)

    assert len(problems) == 1
    assert "usage.uses_total_max" in problems[0]
    assert "less than or equal to 9223372036854775807" in problems[0]
