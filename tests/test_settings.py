from pathlib import Path

import pytest

from ivr.core.errors import ConfigError
from ivr.settings import Settings, read_env_file

GOOD = {"IVR_ARI_PASSWORD": "s3cret-ari-pw", "IVR_SOFTPHONE_PASSWORD": "s3cret-sip-pw"}


def test_defaults_and_derived_urls() -> None:
    s = Settings.from_mapping(GOOD)
    assert s.http_port == 8080
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.ari_ws_url == "ws://127.0.0.1:8088/ari/events"
    assert s.open_signup is True
    assert s.nice == -10
    assert s.event_loop == "uvloop"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("IVR_HTTP_PORT", "eighty", "IVR_HTTP_PORT must be a whole number"),
        ("IVR_HTTP_PORT", "70000", "IVR_HTTP_PORT must be between"),
        ("IVR_ARI_URL", "127.0.0.1:8088", "IVR_ARI_URL must be a http/https URL"),
        ("IVR_DATABASE_URL", "mysql://x/y", "IVR_DATABASE_URL must be a postgresql"),
        ("IVR_ARI_PASSWORD", "short", "IVR_ARI_PASSWORD must be at least 8"),
        ("IVR_ARI_APP", "my app", "IVR_ARI_APP must be letters"),
        ("IVR_OPEN_SIGNUP", "maybe", "IVR_OPEN_SIGNUP must be true or false"),
        ("IVR_LOG_LEVEL", "LOUD", "IVR_LOG_LEVEL must be one of"),
        ("IVR_NICE", "-21", "IVR_NICE must be between -20 and 19"),
        ("IVR_EVENT_LOOP", "trio", "IVR_EVENT_LOOP must be uvloop or asyncio"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_mapping({**GOOD, name: value})


def test_missing_secret_names_itself() -> None:
    with pytest.raises(ConfigError, match="IVR_SOFTPHONE_PASSWORD is not set"):
        Settings.from_mapping({"IVR_ARI_PASSWORD": "s3cret-ari-pw"})


def test_repr_never_shows_secrets() -> None:
    s = Settings.from_mapping(
        {**GOOD, "IVR_DATABASE_URL": "postgresql://u:dbpass@127.0.0.1/ivr"})
    text = repr(s)
    assert "s3cret" not in text and "dbpass" not in text
    assert "***" in text


def test_env_file_fills_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nIVR_HTTP_PORT=9000\nexport IVR_ARI_USER='fromfile'\n"
                   'IVR_ARI_PASSWORD="s3cret-ari-pw"\nIVR_SOFTPHONE_PASSWORD=s3cret-sip-pw\n')
    assert read_env_file(env)["IVR_ARI_USER"] == "fromfile"
    s = Settings.load({"IVR_HTTP_PORT": "9100"}, env_file=env)
    assert s.http_port == 9100 and s.ari_user == "fromfile"


def test_env_file_bad_line(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("IVR_HTTP_PORT 9000\n")
    with pytest.raises(ConfigError, match=r"\.env:1: expected KEY=VALUE"):
        read_env_file(env)
