"""Settings come from the environment, read once in trauma_tracker/settings.py."""

from __future__ import annotations

import pytest

from trauma_tracker.settings import Settings, SettingsError


def test_the_audit_key_comes_from_the_variable_or_its_file(tmp_path):
    assert Settings.from_env({}).audit_key is None
    assert Settings.from_env({}).audit_key_bytes is None
    direct = Settings.from_env({"TT_AUDIT_KEY": "s3cret"})
    assert (direct.audit_key, direct.audit_key_bytes) == ("s3cret", b"s3cret")
    key_file = tmp_path / "audit.key"
    key_file.write_text("from-a-file\n")
    assert Settings.from_env({"TT_AUDIT_KEY_FILE": str(key_file)}).audit_key == "from-a-file"
    assert "s3cret" not in repr(direct)  # secrets stay out of logs and tracebacks


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TT_AUDIT_KEY": "a", "TT_AUDIT_KEY_FILE": "/x"}, "both TT_AUDIT_KEY and"),
        ({"TT_AUDIT_KEY_FILE": "/no/such/file"}, "TT_AUDIT_KEY_FILE: can't read /no/such/file"),
        ({"TT_AUDIT_KEY_FILE": "EMPTY"}, "TT_AUDIT_KEY_FILE: the file is empty"),
    ],
)
def test_an_unusable_audit_key_is_an_error_naming_the_variable(tmp_path, env, message):
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    env = {k: str(empty) if v == "EMPTY" else v for k, v in env.items()}
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_delivery_web_and_drop_folder_settings_are_read_strictly(tmp_path):
    secret = tmp_path / "graph.secret"
    secret.write_text("s3cret-value\n")
    settings = Settings.from_env(
        {
            "TT_SMTP_URL": "smtp://user:pw@mail.force.example:587",
            "TT_GRAPH_CLIENT_SECRET_FILE": str(secret),
            "TT_GRAPH_ENDPOINT": "https://graph.test/v1.0/",
            "TT_DEV_LOGIN": "yes",
            "TT_SUPPORT_CONTACTS": "Force welfare line|https://welfare.force.example; ",
            "TT_DROP_DIRS": "/srv/drop/cad, /srv/drop/hr",
            "TT_POLL_SECONDS": "30",
        }
    )
    assert settings.delivery.graph_client_secret == "s3cret-value"
    assert settings.delivery.graph_endpoint == "https://graph.test/v1.0"
    assert settings.web.dev_login is True
    assert settings.web.support_contacts == (
        ("Force welfare line", "https://welfare.force.example"),
    )
    assert [str(p) for p in settings.drop_dirs] == ["/srv/drop/cad", "/srv/drop/hr"]
    assert settings.poll_seconds == 30
    # Secrets stay out of logs and tracebacks.
    assert "pw@" not in repr(settings) and "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TT_DEV_LOGIN": "maybe"}, "TT_DEV_LOGIN: expected 1 or 0"),
        ({"TT_POLL_SECONDS": "soon"}, "TT_POLL_SECONDS: not a number of seconds: 'soon'"),
        ({"TT_POLL_SECONDS": "0"}, "TT_POLL_SECONDS: 0; it must be between 1 and 3600"),
        ({"TT_SUPPORT_CONTACTS": "no link here"}, "TT_SUPPORT_CONTACTS: 'no link here' should"),
    ],
)
def test_an_unusable_service_setting_names_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
