"""`loyalty codes generate|upload` before any broker: what a file or a pattern becomes
(batches of at most LIST_MAX, repeat-safe ids, problems named by row), and the commands'
exit codes on a bad file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from loyalty import cli_codes
from loyalty.cli_codes import codes, generated, uploaded
from processors.contract.base import Event
from processors.contract.config import OfferWithdrawn
from processors.contract.offer_definition import LIST_MAX
from processors.rules.codes.generation import GeneratedCodes
from processors.rules.member import Config
from tests.rules.given import T0
from tests.rules.offers.given_offers import offer, spend

AT = datetime(2026, 12, 1, tzinfo=UTC)
TERMS = {
    "market": "CA", "starts_at": datetime(2026, 12, 1), "ends_at": datetime(2027, 1, 1),
    "percent_off": "10", "spend_min_cents": 10_000, "per_code_max": 1,
}  # fmt: skip
OPTIONS = ["--market", "CA", "--starts-at", "2026-12-01", "--ends-at", "2027-01-01",
           "--percent-off", "10", "--dry-run"]  # fmt: skip


def test_an_upload_is_published_in_batches_of_at_most_list_max_with_repeatable_ids(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code\n" + "\n".join(f"zn{n:06d}" for n in range(LIST_MAX + 1)) + "\n")
    issues, errors, _ = uploaded("ZN", path, AT, **TERMS)
    again, _, _ = uploaded("ZN", path, AT, **TERMS)
    assert errors == []
    assert [len(i.codes) for i in issues] == [LIST_MAX, 1]
    assert issues[0].codes[0] == "ZN000000"  # upper-cased, as codes compare
    assert [i.event_id for i in issues] == [i.event_id for i in again]
    assert issues[0].discount is not None
    assert issues[0].discount.spend_min_cents == 10_000


def test_the_same_file_with_other_terms_is_another_issue(tmp_path):
    # Found by a user's trial: an upload again with an earlier end kept the first issue's id,
    # so the engine kept the first terms while the projection showed the new ones.
    path = tmp_path / "codes.csv"
    path.write_text("code\nEND1\n")
    (first,), _, _ = uploaded("ZN", path, AT, **TERMS)
    (ended,), _, _ = uploaded("ZN", path, AT, **{**TERMS, "ends_at": datetime(2026, 12, 7)})
    assert first.event_id != ended.event_id


def test_bad_rows_and_repeats_are_reported_with_their_row_numbers(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code\nZN34C\nzn34c\nno way!\n\nZN35C\n")
    issues, errors, warnings = uploaded("ZN", path, AT, **TERMS)
    assert issues == []
    assert errors == [
        f"{path} row 4: 'no way!' is not a promo code: 3–64 of A–Z, 0–9, `_`, `-`, starting "
        "with a letter or digit"
    ]
    assert warnings == [
        f"{path} row 3: 'zn34c' repeats 'ZN34C' (codes compare upper-cased); kept once"
    ]
    result = CliRunner().invoke(codes, ["upload", "ZN", str(path), *OPTIONS])
    assert result.exit_code == 1
    assert "nothing published" in result.output


def test_every_kind_of_bad_row_is_reported_in_one_run(tmp_path):
    # Found by a user's trial: the non-ASCII row was reported first, the others only once it
    # was fixed and the file uploaded again.
    path = tmp_path / "codes.csv"
    path.write_text("code\nCAFÉ1\nno way!\nGOOD1\n")
    issues, errors, _ = uploaded("ZN", path, AT, **TERMS)
    assert issues == []
    assert [e.split(":")[0] for e in errors] == [f"{path} row 2", f"{path} row 3"]


def test_generated_codes_are_the_pattern_and_count_and_checkable():
    issue = generated("SPRING", "SPR-####-??", 10, AT, **TERMS)
    assert (issue.codes, issue.code_pattern, issue.code_count) == ([], "SPR-####-??", 10)
    made = GeneratedCodes("SPRING", issue.event_id, "SPR-####-??", 10)
    assert all(code in made for code in made)


def test_a_pattern_too_small_for_its_count_is_refused_with_the_reason():
    result = CliRunner().invoke(
        codes, ["generate", "SPRING", "--pattern", "S-##", "--count", "10", *OPTIONS]
    )
    assert result.exit_code == 1
    assert "too few" in result.output


def test_codes_issued_for_an_influencer_carry_who_issued_them():
    issue = generated("HOLI", "HOLI-####-??", 10, AT, **TERMS, influencer="holiman")
    assert issue.issuer is not None
    assert (issue.issuer.kind.value, issue.issuer.issuer_id) == ("INFLUENCER", "holiman")
    assert generated("HOLI", "HOLI-####-??", 10, AT, **TERMS).issuer is None


def test_two_discounts_at_once_are_refused_not_one_of_them_kept_in_silence():
    """Found by trying it as a user: both given, the percent was published and the amount
    dropped without a word."""
    result = CliRunner().invoke(
        codes, ["generate", "ZN", "--pattern", "ZN-####", "--count", "5", *OPTIONS,
                "--amount-off-cents", "100"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "not both" in result.output


def config_with(*events: Event) -> Config:
    config = Config()
    for event in events:
        config.apply(event)
    return config


@pytest.fixture(autouse=True)
def config_topic(monkeypatch) -> Callable[..., None]:
    """The config topic as the command reads it (no broker here): empty unless a test says."""

    def holding(*events: Event) -> None:
        monkeypatch.setattr(cli_codes, "current_config", lambda settings: config_with(*events))

    holding()
    return holding


BONUS = offer("BONUS_300", spend(2000))  # CA, live from 2026-03-01 for 60 days
UNLOCKING = ["--market", "CA", "--starts-at", "2026-03-01", "--ends-at", "2026-04-01", "--dry-run"]


@pytest.mark.parametrize(
    ("options", "held", "why"),
    [
        (["--offer", "BONUS_3OO"], [BONUS], "no offer BONUS_3OO was ever published"),
        (["--offer", "BONUS_300", "--market", "US"], [BONUS], "of market CA, the codes of US"),
        (["--offer", "BONUS_300"], [BONUS, OfferWithdrawn(
            event_id="w", occurred_at=T0, offer_id="BONUS_300", requested_by="ops")],
         "BONUS_300 was withdrawn"),
        (["--offer", "BONUS_300", "--starts-at", "2027-01-01", "--ends-at", "2027-02-01"],
         [BONUS], "before the codes start"),
    ],
)  # fmt: skip
def test_codes_for_an_offer_they_could_never_unlock_are_refused_with_why(
    config_topic, options, held, why
):
    """Found by trying it as a user: `--offer` with a mistyped id was published, and every
    code of it was then refused `code_expired` at every checkout."""
    config_topic(*held)
    result = CliRunner().invoke(
        codes, ["generate", "BONUS", "--pattern", "B-####", "--count", "5", *UNLOCKING, *options]
    )

    assert result.exit_code == 1, result.output
    assert why in result.output
    assert "nothing published" in result.output


def test_codes_for_a_live_offer_of_their_market_pass_the_check(config_topic):
    config_topic(BONUS)
    result = CliRunner().invoke(
        codes, ["generate", "BONUS", "--pattern", "B-####", "--count", "5", *UNLOCKING,
                "--offer", "BONUS_300"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "would publish 5 code(s) of BONUS" in result.output


def test_codes_another_promotion_issued_first_are_refused_nothing_published(config_topic, tmp_path):
    # Found by a user's trial: an upload of ZN's codes under FUTURE said "published 3 code(s)
    # of FUTURE", and they did nothing for FUTURE (a code keeps its first promotion).
    first = tmp_path / "zn.csv"
    first.write_text("code\nZN34C\nZN35C\n")
    issued, _, _ = uploaded("ZN", first, AT, **TERMS)
    config_topic(*issued)
    again = tmp_path / "again.csv"
    again.write_text("code\nzn34c\nNEW1\n")
    result = CliRunner().invoke(codes, ["upload", "FUTURE", str(again), *OPTIONS])
    assert result.exit_code == 1, result.output
    assert "1 code(s) are another promotion's already" in result.output
    assert "ZN34C (ZN)" in result.output
    assert "nothing published" in result.output
    same = CliRunner().invoke(codes, ["upload", "ZN", str(again), *OPTIONS])
    assert same.exit_code == 0, same.output  # its own promotion may issue them again


def test_a_bad_option_is_named_in_the_refusal():
    # Found by a user's trial: "Input should be greater than or equal to 1", naming nothing.
    result = CliRunner().invoke(
        codes, ["generate", "ZN", "--pattern", "Z-####", "--count", "5", *OPTIONS,
                "--per-code-max", "0"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "error: --per-code-max: Input should be greater than or equal to 1" in result.output
