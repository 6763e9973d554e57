"""`loyalty audiences upload` against the real broker and Postgres: a `loyaltyId` list becomes
AudienceUploaded parts on the config topic; bad rows are named and stop it; repeats and members
the projection does not know are reported (seed 003, "List-based targeting for audience")."""

import asyncio

import psycopg
import pytest
from click.testing import CliRunner

from loyalty.cli import main
from processors.base.settings import get_settings
from processors.codec.avro import AvroCodec
from processors.contract.config import AudienceUploaded
from processors.rules.offers.targeting import Audiences
from tests.integration.test_offers_publish import read_all

pytestmark = pytest.mark.integration


@pytest.fixture
def members_db(own_database_url, monkeypatch):
    with psycopg.connect(own_database_url) as conn:
        for member in ("M1", "M2", "M3"):
            conn.execute(
                "INSERT INTO members (member_id, market, enrolled_at, status, updated_at)"
                " VALUES (%s, 'CA', now(), 'ACTIVE', now())",
                (member,),
            )
    monkeypatch.setenv("DATABASE_URL", own_database_url)
    get_settings.cache_clear()
    yield own_database_url
    get_settings.cache_clear()


def upload(*args: str):
    return CliRunner().invoke(main, ["audiences", "upload", *args])


def test_a_list_becomes_the_audience_and_unknown_members_are_reported(
    config_topic, members_db, stack_settings, tmp_path
):
    listed = tmp_path / "vips.csv"
    listed.write_text("loyaltyId,name\nM1,Ann\nM2,Bob\nM1,Ann again\nM9,Nobody\n")

    result = upload("VIPS", str(listed), "--name", "VIP members")

    assert result.exit_code == 0, result.output
    assert "row 4: 'M1' repeats row 2; kept once" in result.output
    assert "1 member(s) unknown to the members projection, kept" in result.output
    assert "M9" in result.output
    records = asyncio.run(read_all(stack_settings.bootstrap_servers, config_topic, 1))
    (part,) = [AvroCodec().decode(value) for _, value in records]
    assert isinstance(part, AudienceUploaded)
    assert (part.audience_id, part.name, part.member_ids) == ("VIPS", "VIP members",
                                                              ["M1", "M2", "M9"])  # fmt: skip
    audiences = Audiences()
    assert audiences.apply(part) == ""
    assert audiences.has("VIPS", "M2")

    again = upload("VIPS", str(listed), "--name", "VIP members")
    records = asyncio.run(read_all(stack_settings.bootstrap_servers, config_topic, 2))
    assert again.exit_code == 0
    assert [AvroCodec().decode(v).event_id for _, v in records] == [part.event_id] * 2


def test_bad_rows_are_named_and_nothing_is_published(config_topic, members_db, tmp_path):
    listed = tmp_path / "bad.csv"
    listed.write_text("loyaltyId,name\nM1,a\n\nM2,b\n,c\nMé,d\n")
    missing_header = tmp_path / "no_header.csv"
    missing_header.write_text("memberId\nM1\n")

    bad = upload("VIPS", str(listed))
    headless = upload("VIPS", str(missing_header))

    assert bad.exit_code == headless.exit_code == 1
    assert "row 5: no code in the loyaltyId column" in bad.output
    assert "row 6: 'Mé' is not a code" in bad.output
    assert "nothing published" in bad.output
    assert "no loyaltyId header" in headless.output
