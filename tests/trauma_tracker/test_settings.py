"""Settings come from the environment, read once in trauma_tracker/settings.py."""

from __future__ import annotations

import re

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


# --- pulled sources (issue 15 section 4) -----------------------------------------------------

HTTP_SOURCE = """
[sources.storm]
type = "http"
feed = "cc_incidents"
url = "https://cad.force.example/v1/incidents"
token_env = "TT_STORM_TOKEN"
"""

SQL_SOURCE = """
[sources.niche]
type = "sql"
feed = "rms_occurrences"
url_env = "TT_NICHE_URL"
query = "SELECT 1"
"""


def sources(tmp_path, text: str, **env: str) -> tuple:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return Settings.from_env({"TT_SOURCES_FILE": str(path), **env}).sources


def test_sources_are_read_with_their_defaults_and_no_secret_in_repr(tmp_path):
    http, sql = sources(
        tmp_path,
        HTTP_SOURCE + SQL_SOURCE,
        TT_STORM_TOKEN="tok-123\n",  # as an env file or `echo` leaves it
        TT_NICHE_URL="postgresql+psycopg://niche:pw-456@db.force.example/niche",
    )
    assert http.token == "tok-123"
    assert (http.page_size, http.timeout, http.max_pages, http.max_seconds) == (
        1000,
        10.0,
        10_000,
        900.0,
    )
    assert sql.url.endswith("@db.force.example/niche")
    assert "tok-123" not in repr(http) and "pw-456" not in repr(sql)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("page_size = 0", "page_size: 0 is out of range: it must be between 1 and 100000"),
        ('page_size = "10"', "page_size: expected a whole number (no quotes), got the text '10'"),
        ("page_size = 10.0", "page_size: expected a whole number (no quotes), got 10.0"),
        ("page_size = true", "page_size: expected a whole number (no quotes), got true"),
        ("timeout = 0", "timeout: 0 is out of range: it must be between 0.1 and 600"),
        ("timeout = nan", "timeout: nan is out of range"),
        ("timeout = inf", "timeout: inf is out of range"),
        ('timeout = "10"', "timeout: expected a number (no quotes), got the text '10'"),
        ("retries = -1", "retries: -1 is out of range: it must be between 0 and 10"),
        ("max_pages = 0", "max_pages: 0 is out of range"),
        ("max_seconds = 0", "max_seconds: 0 is out of range"),
        ("verify = 1", "verify: expected true, false or the path of a CA bundle, got 1"),
        ('verify = "/no/such/ca.pem"', "verify: no CA bundle file or folder at /no/such/ca.pem"),
        ("watermark_field = 7", "watermark_field: expected text in quotes, got 7"),
        ("watermark_field = [1]", "watermark_field: expected text in quotes, got a TOML list"),
        ("colour = 1", "unknown key(s) colour"),
    ],
)
def test_an_http_source_setting_of_the_wrong_type_or_range_names_it(tmp_path, line, message):
    with pytest.raises(SettingsError) as raised:
        sources(tmp_path, HTTP_SOURCE + line + "\n", TT_STORM_TOKEN="t")
    assert str(raised.value).startswith(f"{tmp_path / 'sources.toml'}: [sources.storm]: {message}")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('watermark_column = "updated at"', "watermark_column: 'updated at' is not a plain column"),
        ('watermark_column = "q.updated_at; DROP"', "is not a plain column name"),
        ("chunk_size = 0", "chunk_size: 0 is out of range: it must be between 1 and 1000000"),
        ('chunk_size = "500"', "chunk_size: expected a whole number (no quotes)"),
        ('url = "sqlite:///x.sqlite"', "set url or url_env, not both"),
    ],
)
def test_a_sql_source_setting_of_the_wrong_type_or_range_names_it(tmp_path, line, message):
    with pytest.raises(SettingsError) as raised:
        sources(tmp_path, SQL_SOURCE + line + "\n", TT_NICHE_URL="sqlite:///niche.sqlite")
    assert str(raised.value).startswith(f"{tmp_path / 'sources.toml'}: [sources.niche]: ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources = 3\n", "sources must be tables, [sources.NAME]"),
        ("[sources]\nstorm = 1\n", "[sources.storm]: expected a table of settings, got 1"),
        ('[sources.x]\ntype = 5\nfeed = "units"\n', 'type must be "http" or "sql", not 5'),
        ('[sources.x]\ntype = "http"\nfeed = "units"\n', "[sources.x]: url is required"),
        ('[sources.x]\ntype = "http"\nfeed = "units"\nurl = "ftp://x"\n', "url: expected an http"),
        (
            '[sources.x]\ntype = "sql"\nfeed = "units"\nurl = "x"\n',
            "[sources.x]: query is required",
        ),
    ],
)
def test_a_sources_file_of_the_wrong_shape_names_the_problem(tmp_path, text, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        sources(tmp_path, text)


@pytest.mark.parametrize(
    ("value", "where"),
    [("tok\nen", "position 4"), ("tok\ren", "position 4"), ("to\x00ken", "position 3")],
)
def test_a_token_with_a_control_character_inside_is_refused_without_showing_it(
    tmp_path, value, where
):
    with pytest.raises(SettingsError) as raised:
        sources(tmp_path, HTTP_SOURCE, TT_STORM_TOKEN=value)
    message = str(raised.value)
    assert message.startswith("TT_STORM_TOKEN: holds a control character") and where in message
    assert "tok" not in message.replace("TT_STORM_TOKEN", "")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://niche:p@ss@db.force.example/niche", "has an unencoded '@'"),
        ("not a url", "can't be read (expected dialect+driver://"),
    ],
)
def test_a_sql_source_url_that_cant_be_used_is_named_without_its_password(tmp_path, url, message):
    with pytest.raises(SettingsError) as raised:
        sources(tmp_path, SQL_SOURCE, TT_NICHE_URL=url)
    text = str(raised.value)
    assert f"[sources.niche]: TT_NICHE_URL: the database URL {message}" in text
    assert "ss@db" not in text and "p@ss" not in text


def test_secrets_sent_over_the_wire_are_trimmed_and_refused_with_control_characters():
    settings = Settings.from_env(
        {"TT_GRAPH_CLIENT_SECRET": "s3cret\r\n", "TT_TEAMS_WEBHOOK_URL": " https://hook/x\n"}
    )
    assert settings.delivery.graph_client_secret == "s3cret"
    assert settings.delivery.teams_webhook_url == "https://hook/x"
    with pytest.raises(SettingsError, match="TT_OIDC_CLIENT_SECRET: holds a control") as raised:
        Settings.from_env({"TT_OIDC_CLIENT_SECRET": "ab\x1bcd"})
    assert "ab" not in str(raised.value).replace("TT_", "")
