"""Netra.init arguments and environment variables (NETRA_* and the standard OTEL_* ones)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from netra import Netra, config
from netra._config import (
    DEFAULT_MAX_QUEUE_SIZE,
    ConfigError,
    NetraConfig,
    parse_headers,
    resolve,
    traces_url,
)

ENV_VARS = [
    "NETRA_API_KEY", "NETRA_OTLP_ENDPOINT", "NETRA_HEADERS", "NETRA_APP_NAME", "NETRA_ENV", "NETRA_TRACE_CONTENT",
    "NETRA_MAX_CONTENT_LENGTH", "NETRA_DEBUG", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


#: Netra.init's defaults, from its signature (the one place its arguments are declared).
INIT_DEFAULTS = {name: p.default for name, p in inspect.signature(Netra.init).parameters.items()}
#: The arguments of Netra.init that are objects for the runtime, not settings to resolve.
NOT_SETTINGS = {"prices", "span_exporter"}


def cfg(**kwargs: Any) -> NetraConfig:
    return resolve({**INIT_DEFAULTS, **kwargs})


class _Reads(dict[str, Any]):
    """A mapping that records which keys were read."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


def test_resolve_reads_every_setting_of_init_and_nothing_else() -> None:
    """Netra.init passes its arguments through by name: each setting is read, an unknown name is not
    invented, and a setting missing from the call fails loudly instead of silently defaulting."""
    arguments = _Reads(INIT_DEFAULTS)
    resolve(arguments)
    assert arguments.read == set(INIT_DEFAULTS) - NOT_SETTINGS
    with pytest.raises(KeyError, match="max_queue_bytes"):
        resolve({k: v for k, v in INIT_DEFAULTS.items() if k != "max_queue_bytes"})


def test_init_passes_each_argument_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Netra.init hands to the resolver is exactly what it was called with."""
    from netra import _config

    seen: list[dict[str, Any]] = []

    def stop(arguments: dict[str, Any]) -> NetraConfig:
        seen.append(dict(arguments))
        raise ConfigError("stop here")

    Netra.shutdown()  # an init left running by another test would make this one a no-op
    monkeypatch.setattr(_config, "resolve", stop)
    given = {name: object() for name in INIT_DEFAULTS}
    with pytest.raises(ConfigError, match="stop here"):
        Netra.init(**given)
    assert seen == [given]


def test_defaults() -> None:
    c = cfg()
    assert c.endpoint == "http://localhost:4318"
    assert c.traces_endpoint == "http://localhost:4318/v1/traces"
    assert c.headers == {} and c.api_key is None
    assert c.trace_content is True and c.max_content_length == config.DEFAULT_MAX_CONTENT_LENGTH
    assert c.max_queue_size == 32_768 and c.max_export_batch_size == 512
    assert c.max_queue_bytes == 64 * 1024 * 1024
    assert c.export_timeout_s == 5.0 and c.instruments is None


def test_netra_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRA_API_KEY", "key-from-env")
    monkeypatch.setenv("NETRA_OTLP_ENDPOINT", "https://netra.example.com/telemetry/")
    monkeypatch.setenv("NETRA_HEADERS", "x-team=ml%20platform, x-extra=1")
    monkeypatch.setenv("NETRA_APP_NAME", "meetingmind")
    monkeypatch.setenv("NETRA_ENV", "staging")
    monkeypatch.setenv("NETRA_TRACE_CONTENT", "false")
    monkeypatch.setenv("NETRA_MAX_CONTENT_LENGTH", "200")
    c = cfg()
    assert c.endpoint == "https://netra.example.com/telemetry"
    assert c.traces_endpoint == "https://netra.example.com/telemetry/v1/traces"
    assert c.headers == {"x-team": "ml platform", "x-extra": "1", "x-api-key": "key-from-env"}
    assert c.api_key == "key-from-env"
    assert (c.app_name, c.environment, c.trace_content, c.max_content_length) == ("meetingmind", "staging", False, 200)


def test_arguments_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRA_API_KEY", "env-key")
    monkeypatch.setenv("NETRA_OTLP_ENDPOINT", "http://env:4318")
    monkeypatch.setenv("NETRA_APP_NAME", "env-app")
    monkeypatch.setenv("NETRA_TRACE_CONTENT", "false")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-a=otel,x-b=otel")
    monkeypatch.setenv("NETRA_HEADERS", "x-b=netra")
    c = cfg(api_key="arg-key", endpoint="http://arg:4318/v1/traces", app_name="arg-app", trace_content=True,
            headers={"X-C": "arg"})
    assert c.traces_endpoint == "http://arg:4318/v1/traces"
    assert c.headers == {"x-a": "otel", "x-b": "netra", "x-c": "arg", "x-api-key": "arg-key"}
    assert (c.app_name, c.trace_content) == ("arg-app", True)


def test_headers_string_with_api_key_and_otel_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    c = cfg(headers="x-api-key=abc%3D%3D,Authorization=Bearer%20t")
    assert c.api_key == "abc==" and c.headers["authorization"] == "Bearer t"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert cfg().traces_endpoint == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom/traces")
    c = cfg()
    assert c.traces_endpoint == "http://collector:4318/custom/traces"
    monkeypatch.setenv("NETRA_OTLP_ENDPOINT", "http://netra:4318")
    assert cfg().traces_endpoint == "http://netra:4318/v1/traces"


def test_bsp_and_timeout_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    c = cfg()
    assert (c.max_queue_size, c.max_export_batch_size, c.schedule_delay_ms) == (100, 100, 250)
    assert cfg(max_queue_size=7).max_queue_size == 7
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    assert cfg().export_timeout_s is None  # the OTLP exporter reads it
    assert cfg(export_timeout=1.5).export_timeout_s == 1.5


def test_bad_env_values_warn_and_fall_back(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NETRA_TRACE_CONTENT", "maybe")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "nan")
    c = cfg()
    assert c.trace_content is True and c.max_queue_size == DEFAULT_MAX_QUEUE_SIZE
    assert c.schedule_delay_ms == 1000.0
    assert "NETRA_TRACE_CONTENT" in caplog.text and "OTEL_BSP_MAX_QUEUE_SIZE" in caplog.text
    assert "OTEL_BSP_SCHEDULE_DELAY" in caplog.text


@pytest.mark.parametrize("variable", ["NETRA_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"])
@pytest.mark.parametrize("value", ["sk-live-secret-key", "x-ok=1,=nokey", "x-ok=1, secret ,x-b=2"])
def test_a_malformed_header_variable_fails_init_and_the_usage_client_alike(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """Headers carry the API key: a bad entry is a typed error naming the variable, never silently skipped,
    and Netra.init and the usage client (one reader) fail on it the same way."""
    from netra.usage import UsageClient

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable) as from_init:
        cfg()
    with pytest.raises(ConfigError, match=variable) as from_usage:
        UsageClient(api_key="k")
    assert str(from_init.value) == str(from_usage.value)
    assert "name=value" in str(from_init.value)
    assert "secret-key" not in str(from_init.value)  # a bare secret is not echoed whole


def test_init_and_the_usage_client_read_the_same_endpoint_and_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    from netra.usage import UsageClient

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://otel.example.com/telemetry/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=a%20b,x-api-key=otel")
    monkeypatch.setenv("NETRA_HEADERS", "x-team=c")
    monkeypatch.setenv("NETRA_API_KEY", "netra-key")
    c = cfg()
    client = UsageClient()
    try:
        settings = client._settings
        assert settings.base_url == "https://otel.example.com"
        assert c.endpoint == "https://otel.example.com/telemetry"
        for name in ("x-team", "x-api-key"):
            assert settings.headers[name] == c.headers[name]
        assert c.headers["x-team"] == "c" and c.headers["x-api-key"] == "netra-key"
        monkeypatch.setenv("NETRA_OTLP_ENDPOINT", "localhost:4318")
        with pytest.raises(ConfigError, match="NETRA_OTLP_ENDPOINT.*http://"):
            cfg()
        with pytest.raises(ConfigError, match="NETRA_OTLP_ENDPOINT.*http://"):
            UsageClient()
    finally:
        client.close()


def test_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="http://"):
        cfg(endpoint="netra.example.com")
    with pytest.raises(ConfigError, match="max_content_length"):
        cfg(max_content_length=0)
    with pytest.raises(ConfigError, match="export_timeout"):
        cfg(export_timeout=0)
    with pytest.raises(ConfigError, match="InstrumentSet"):
        cfg(instruments="openai")
    with pytest.raises(ConfigError, match="strings"):
        parse_headers({"x": 1})  # type: ignore[dict-item]


def test_traces_url() -> None:
    assert traces_url("http://h:1") == "http://h:1/v1/traces"
    assert traces_url("http://h:1/") == "http://h:1/v1/traces"
    assert traces_url("http://h:1/v1/traces") == "http://h:1/v1/traces"


def test_config_getters_without_netra() -> None:
    assert not config.active()
    assert config.trace_content_enabled(default=False) is False
    assert config.trace_content_enabled() is True
    assert config.max_content_length(50) == 50
    assert config.openai_stream_usage_enabled(default=False) is False
    assert config.truncate("abcdef", 3).startswith("abc") and "truncated 3" in config.truncate("abcdef", 3)
