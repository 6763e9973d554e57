"""Bearer tokens: what they say is believed only when the signature verifies."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from projections.api.auth import Principal, Role, issue_token, verify_token
from projections.api.errors import UnauthorizedError

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"


def test_an_issued_token_names_its_subject_and_role():
    token = issue_token(SECRET, "M1", Role.MEMBER, now=datetime.now(UTC))
    assert verify_token(SECRET, token) == Principal("M1", Role.MEMBER)


def test_a_member_reads_only_itself_and_staff_read_anyone():
    assert Principal("M1", Role.MEMBER).may_read_member("M1")
    assert not Principal("M1", Role.MEMBER).may_read_member("M2")
    assert Principal("alice", Role.STAFF).may_read_member("M2")


def test_an_expired_token_is_refused():
    issued = datetime.now(UTC) - timedelta(hours=2)
    token = issue_token(SECRET, "M1", Role.MEMBER, now=issued, ttl=timedelta(hours=1))
    with pytest.raises(UnauthorizedError, match="expired"):
        verify_token(SECRET, token)


def test_an_unsigned_token_is_refused():
    token = jwt.encode({"sub": "M1", "role": "staff", "exp": 4102444800}, None, algorithm="none")
    with pytest.raises(UnauthorizedError, match="HS256"):
        verify_token(SECRET, token)


def test_a_token_needs_a_subject():
    with pytest.raises(ValueError, match="subject"):
        issue_token(SECRET, "", Role.STAFF, now=datetime.now(UTC))


NEW = "the-new-key-of-a-rotation-long-enough-for-hs256"


def test_during_a_rotation_tokens_of_the_retiring_key_are_still_accepted():
    now = datetime.now(UTC)
    old = issue_token(SECRET, "M1", Role.MEMBER, now=now)
    new = issue_token(NEW, "M2", Role.MEMBER, now=now)
    assert verify_token([NEW, SECRET], old).subject == "M1"
    assert verify_token([NEW, SECRET], new).subject == "M2"
    with pytest.raises(UnauthorizedError, match="signature"):
        verify_token([NEW], old)  # once the rotation is over


def test_an_expired_token_of_the_retiring_key_is_refused_as_expired():
    then = datetime.now(UTC) - timedelta(hours=3)
    old = issue_token(SECRET, "M1", Role.MEMBER, now=then, ttl=timedelta(minutes=5))
    with pytest.raises(UnauthorizedError, match="expired"):
        verify_token([NEW, SECRET], old)


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch):
    now = datetime.now(UTC)
    token = issue_token(SECRET, "M1", Role.MEMBER, now=now, ttl=timedelta(minutes=5))
    assert verify_token(SECRET, token).subject == "M1"  # verified, then remembered
    later = (now + timedelta(minutes=5)).timestamp()
    monkeypatch.setattr("projections.api.auth.time.time", lambda: later)
    monkeypatch.setattr("jwt.api_jwt.datetime", _Frozen(later))
    with pytest.raises(UnauthorizedError, match="expired"):
        verify_token(SECRET, token)


def test_a_remembered_token_is_verified_again_under_other_keys():
    token = issue_token(SECRET, "M1", Role.MEMBER, now=datetime.now(UTC))
    assert verify_token([NEW, SECRET], token).subject == "M1"
    with pytest.raises(UnauthorizedError, match="signature"):
        verify_token([NEW], token)  # the rotation ended: not the keys it was verified with


class _Frozen:
    """Stands in for `datetime` in PyJWT: its `now` is a fixed time."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self, tz=None):
        return datetime.fromtimestamp(self.at, tz)

    def __getattr__(self, name):
        return getattr(datetime, name)
