"""One settings class per service: prefixed variables for the service, unprefixed ones
shared by the platform."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kansoku.kit.settings import (
    ConfigurationError,
    invalid_setting_message,
    require,
    service_link_hint,
)
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


#: What Kubernetes' service links give every pod when the release is named `kansoku`: a
#: Service `kansoku-catalog` on port 8002 becomes the catalog's own port setting.
SERVICE_LINK = "tcp://10.0.0.1:8002"


def test_a_service_link_in_a_port_is_named_with_the_fix(clean_env: pytest.MonkeyPatch
                                                        ) -> None:
    clean_env.setenv("KANSOKU_CATALOG_PORT", SERVICE_LINK)
    with pytest.raises(ValidationError) as caught:
        CatalogSettings()
    message = invalid_setting_message(caught.value, "KANSOKU_CATALOG_")
    assert message == (
        f"KANSOKU_CATALOG_PORT={SERVICE_LINK} is a Kubernetes service link (the Service "
        "'kansoku-catalog' in this namespace), not a port: set enableServiceLinks: false "
        "on the pod (the kansoku chart does), or unset the variable")


def test_any_other_bad_value_is_named_without_repeating_it(clean_env: pytest.MonkeyPatch
                                                           ) -> None:
    clean_env.setenv("KANSOKU_CATALOG_PORT", "secret-looking")
    with pytest.raises(ValidationError) as caught:
        CatalogSettings()
    message = invalid_setting_message(caught.value, "KANSOKU_CATALOG_")
    assert message.startswith("KANSOKU_CATALOG_PORT is not valid: ")
    assert "secret-looking" not in message
    # A platform-wide field is named by its own variable, whatever the prefix.
    clean_env.delenv("KANSOKU_CATALOG_PORT")
    clean_env.setenv("KANSOKU_READINESS_TIMEOUT", "soon")
    with pytest.raises(ValidationError) as caught:
        CatalogSettings()
    assert invalid_setting_message(caught.value, "KANSOKU_CATALOG_").startswith(
        "KANSOKU_READINESS_TIMEOUT is not valid: ")


@pytest.mark.parametrize("value", ["8002", "tcp://catalog:8002", "http://10.0.0.1:8002"])
def test_only_a_service_link_reads_as_one(value: str) -> None:
    assert service_link_hint("KANSOKU_CATALOG_PORT", value) is None
    assert service_link_hint("KANSOKU_NATS_PORT", "tcp://[fd00::1]:4222") is not None
