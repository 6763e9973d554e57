"""`loyalty api` will not serve a reachable address with the public development secret."""

from __future__ import annotations

from click.testing import CliRunner

from loyalty.cli import main
from processors.base.settings import get_settings


def test_the_api_refuses_a_non_loopback_address_with_the_development_secret(monkeypatch):
    monkeypatch.delenv("LOYALTY_API_SECRET", raising=False)
    monkeypatch.delenv("LOYALTY_ALLOW_DEV_SECRET", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["api", "--host", "0.0.0.0", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "refusing to serve 0.0.0.0 with the development API secret" in result.output
