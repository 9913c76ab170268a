"""`gateway.metrics`: where metrics are served, and that recording is free when they are off."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import metrics_http
from gateway.errors import ConfigError


def _settings(tmp_path: Path, toml: str, **attributes: Any) -> Any:
    config = tmp_path / "gateway.toml"
    config.write_text(toml)
    return SimpleNamespace(config_path=config, **attributes)


def test_listen_address_from_the_settings_or_else_the_metrics_table(tmp_path: Path) -> None:
    """`[metrics] listen = "HOST:PORT"` turns metrics on; without it they are off. Settings
    that carry the key are used as they are."""
    on = _settings(tmp_path, '[metrics]\nlisten = "127.0.0.1:9464"\n')
    assert metrics_http.listen_address(on) == ("127.0.0.1", 9464)
    assert metrics_http.listen_address(_settings(tmp_path, "[gateway]\n")) is None
    parsed = _settings(tmp_path, "", metrics_listen="[::1]:9100")
    assert metrics_http.listen_address(parsed) == ("::1", 9100)
    assert metrics_http.listen_address(_settings(tmp_path, "", metrics_listen=None)) is None


def test_a_bad_listen_address_names_the_key(tmp_path: Path) -> None:
    """A typo is a configuration error naming `metrics.listen`, not a crash at first scrape."""
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        metrics_http.listen_address(_settings(tmp_path, '[metrics]\nlisten = "9464"\n'))
