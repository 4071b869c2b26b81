"""Settings: one documented class, reflected in the README, the CLI and /-/settings.json."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, settings_table

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


@pytest.mark.parametrize("weak, why", [
    ("short-but-random-Zq8", "at least 32"),
    ("featureboard-demo-secret-change-me", "placeholder"),  # the old shipped default
    ("please-change-me-before-production-0123456789", "placeholder"),
    ("x" * 40, "distinct characters"),
])
def test_weak_configured_secret_is_refused_in_every_mode(weak, why):
    for demo in (False, True):
        with pytest.raises(ValidationError, match=why):
            Settings(secret_key=weak, demo=demo)
    assert Settings(host="0.0.0.0", secret_key="kT3v9QzL1mW8xR2pB7nY4cF6hJ0sD5gA").host == "0.0.0.0"


def test_no_built_in_secret():
    assert Settings().secret_key == "" and Settings(demo=True).secret_key == ""


def test_demo_mode_opens_registration():
    assert Settings(demo=True).open_registration is True
    assert Settings().open_registration is False


def test_settings_json_masks_secrets(make_app_client):
    client = make_app_client(secret_key="s3cret-value-xyz-9QmT4vL2pR7wK1nB", llm_api_key="sk-abc")
    body = client.get("/-/settings.json").json()
    assert body["settings"]["secret_key"] == "***"
    assert body["settings"]["llm_api_key"] == "***"
    assert "s3cret-value-xyz-9QmT4vL2pR7wK1nB" not in client.get("/-/settings.json").text
    documented = {row["env"] for row in body["documentation"]}
    assert documented == {env for env, _, _ in settings_table()}


def test_cli_settings_prints_every_setting(capsys):
    from app.cli import main

    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for env, _, _ in settings_table():
        assert env in out
