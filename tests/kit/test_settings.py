"""One settings class per service: prefixed variables for the service, unprefixed ones
shared by the platform."""

from __future__ import annotations

import pytest

from kansoku.kit.settings import ConfigurationError, require
from kansoku.services.catalog.settings import Settings as CatalogSettings
from kansoku.services.gateway.settings import Settings as GatewaySettings


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = CatalogSettings()
    assert settings.port == 8002
    assert settings.host == "127.0.0.1"
    assert settings.effective_log_level == "INFO"
    assert settings.database_url is None


def test_service_and_platform_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KANSOKU_CATALOG_PORT", "9102")
    clean_env.setenv("KANSOKU_LOG_LEVEL", "warning")
    clean_env.setenv("KANSOKU_CATALOG_LOG_LEVEL", "debug")
    clean_env.setenv("KANSOKU_DATABASE_URL", "postgresql://db/kansoku")
    clean_env.setenv("KANSOKU_CATALOG_URL", "http://catalog.internal:9102")
    catalog, gateway = CatalogSettings(), GatewaySettings()
    assert catalog.port == 9102
    assert catalog.effective_log_level == "DEBUG"
    assert gateway.effective_log_level == "WARNING"
    assert catalog.database_url == gateway.database_url == "postgresql://db/kansoku"
    assert gateway.catalog_url == "http://catalog.internal:9102"
    assert gateway.port == 8000


def test_require_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="KANSOKU_REDIS_URL is not set: carts"):
        require(None, "KANSOKU_REDIS_URL", "carts live in Valkey")
    assert require("redis://x", "KANSOKU_REDIS_URL", "carts") == "redis://x"
