"""Settings come from the environment; the well-known unprefixed names win over defaults."""

from processors.base.settings import Settings


def test_without_overrides_the_local_stack_is_used(monkeypatch):
    for name in (
        "KAFKA_BOOTSTRAP",
        "DATABASE_URL",
        "LOYALTY_KAFKA_BOOTSTRAP",
        "LOYALTY_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOYALTY_KAFKA_PORT", "29092")
    monkeypatch.setenv("LOYALTY_POSTGRES_PORT", "25432")
    settings = Settings()
    assert settings.bootstrap_servers == "127.0.0.1:29092"
    assert settings.dsn == "postgresql://loyalty:loyalty@127.0.0.1:25432/loyalty"


def test_kafka_bootstrap_and_database_url_point_at_an_existing_stack(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    settings = Settings()
    assert settings.bootstrap_servers == "broker:9092"
    assert settings.dsn == "postgresql://u:p@db:5432/x"


def test_partitions_must_be_positive(monkeypatch):
    import pytest
    from pydantic import ValidationError

    monkeypatch.setenv("LOYALTY_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="partitions"):
        Settings()


def test_the_api_secret_must_be_long_enough(monkeypatch):
    import pytest
    from pydantic import ValidationError

    monkeypatch.setenv("LOYALTY_API_SECRET", "too-short")
    with pytest.raises(ValidationError, match="api_secret"):
        Settings()
    monkeypatch.setenv("LOYALTY_API_SECRET", "x" * 32)
    assert Settings().api_secret.get_secret_value() == "x" * 32


def test_the_development_secret_serves_loopback_only(monkeypatch):
    monkeypatch.delenv("LOYALTY_API_SECRET", raising=False)
    monkeypatch.delenv("LOYALTY_ALLOW_DEV_SECRET", raising=False)
    settings = Settings()
    for host in ("127.0.0.1", "localhost", "::1"):
        assert settings.dev_secret_refusal(host) is None
    refusal = settings.dev_secret_refusal("0.0.0.0")
    assert refusal is not None
    assert "LOYALTY_API_SECRET" in refusal


def test_a_secret_of_ones_own_or_the_explicit_flag_serves_any_address(monkeypatch):
    monkeypatch.setenv("LOYALTY_API_SECRET", "a-real-secret-of-our-own-long-enough-for-hs256")
    assert Settings().dev_secret_refusal("0.0.0.0") is None
    monkeypatch.delenv("LOYALTY_API_SECRET")
    monkeypatch.setenv("LOYALTY_ALLOW_DEV_SECRET", "true")
    assert Settings().dev_secret_refusal("0.0.0.0") is None


def test_the_api_accepts_the_retiring_key_beside_the_new_one(monkeypatch):
    monkeypatch.setenv("LOYALTY_API_SECRET", "the-new-key-of-a-rotation-long-enough-for-hs256")
    monkeypatch.setenv("LOYALTY_API_PREVIOUS_SECRET", "the-old-key-of-a-rotation-long-enough-hs256")
    assert Settings().api_secrets() == [
        "the-new-key-of-a-rotation-long-enough-for-hs256",
        "the-old-key-of-a-rotation-long-enough-hs256",
    ]
