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
