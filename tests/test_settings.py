"""Settings: one documented class, reflected in the README, the CLI and /-/settings.json."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import DEFAULT_SECRET, Settings, settings_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_has_a_description():
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 15, f"setting {name} has no real description"


def test_readme_settings_table_lists_every_setting():
    readme = README.read_text()
    missing = [env for env, _, _ in settings_table() if f"`{env}`" not in readme]
    assert not missing, f"README's settings table misses {missing}; regenerate with `featureboard settings --markdown`"


def test_env_prefix(monkeypatch):
    monkeypatch.setenv("FEATUREBOARD_PORT", "8123")
    monkeypatch.setenv("FEATUREBOARD_DEVICE", "cpu")
    s = Settings()
    assert (s.port, s.device) == (8123, "cpu")


def test_default_secret_refused_when_serving_beyond_loopback():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(host="0.0.0.0")
    assert Settings(host="0.0.0.0", secret_key="x" * 32).host == "0.0.0.0"
    assert Settings(host="0.0.0.0", demo=True).secret_key == DEFAULT_SECRET


def test_demo_mode_opens_registration():
    assert Settings(demo=True).open_registration is True
    assert Settings().open_registration is False


def test_settings_json_masks_secrets(make_app_client):
    client = make_app_client(secret_key="s3cret-value-xyz", llm_api_key="sk-abc")
    body = client.get("/-/settings.json").json()
    assert body["settings"]["secret_key"] == "***"
    assert body["settings"]["llm_api_key"] == "***"
    assert "s3cret-value-xyz" not in client.get("/-/settings.json").text
    documented = {row["env"] for row in body["documentation"]}
    assert documented == {env for env, _, _ in settings_table()}


def test_cli_settings_prints_every_setting(capsys):
    from app.cli import main

    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for env, _, _ in settings_table():
        assert env in out
