"""Settings from the environment (CONTRACT section 4): read here once and passed down.

A secret may be given as a file: `TT_X_FILE=/run/secrets/x` instead of `TT_X=...`. Parsing is
strict: a value that can't be used is an error naming the variable, not a silent default.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///trauma-tracker.sqlite"
# How far back exposures are kept and shown: at least the 5-year window the indicators use;
# a force that wants longer-term trends sets more (TT_HISTORY_YEARS).
DEFAULT_HISTORY_YEARS = 5.0
DEFAULT_POLL_SECONDS = 15.0
DEFAULT_PULL_SECONDS = 300.0
# /readyz fails once the scheduler's intake or dispatch has not succeeded for this long.
DEFAULT_SCHEDULER_STALE_SECONDS = 600.0
DEFAULT_GRAPH_ENDPOINT = "https://graph.microsoft.com/v1.0"
SHIPPED_RULES = Path(__file__).resolve().parent.parent / "rules"


class SettingsError(Exception):
    """A setting that is missing or can't be used; the message names the variable."""


def _value(env: Mapping[str, str], name: str) -> str | None:
    """`name` from the environment, or the contents of the file `name_FILE` names."""
    direct = env.get(name)
    path = env.get(f"{name}_FILE")
    if direct is not None and path is not None:
        raise SettingsError(f"both {name} and {name}_FILE are set; set one")
    if path is not None:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise SettingsError(f"{name}_FILE: can't read {path}: {error.strerror}") from None
    return direct if direct not in (None, "") else None


@dataclass(frozen=True)
class HttpSourceSettings:
    name: str
    feed: str
    url: str = field(repr=False)  # may hold user:password
    token: str | None = field(default=None, repr=False)
    watermark_field: str = "updated_at"
    page_size: int = 1000
    timeout: float = 10.0
    retries: int = 3
    verify: bool | str = True
    # A pull ends with an error after this many pages or seconds (integrations.http).
    max_pages: int = 10_000
    max_seconds: float = 900.0


@dataclass(frozen=True)
class SqlSourceSettings:
    name: str
    feed: str
    url: str = field(repr=False)  # holds the reporting database's password
    query: str = ""
    watermark_column: str | None = None
    chunk_size: int = 10000


@dataclass(frozen=True)
class DeliverySettings:
    """How notifications leave (CONTRACT section 4). A channel whose settings are missing is
    reported by `notify` and its messages stay pending."""

    smtp_url: str | None = field(default=None, repr=False)  # smtp://user:pass@host:port
    email_from: str | None = None
    teams_webhook_url: str | None = field(default=None, repr=False)  # holds a signature
    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: str | None = field(default=None, repr=False)
    graph_sender: str | None = None
    graph_authority: str | None = None  # override, for a test identity endpoint
    graph_endpoint: str = DEFAULT_GRAPH_ENDPOINT


@dataclass(frozen=True)
class WebSettings:
    """Sign-in and the web app (CONTRACT sections 4 and 5)."""

    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_authority: str | None = None
    dev_login: bool = False  # the persona picker; refused unless listening on loopback
    # The force's own support contacts shown beside the national signposts, as
    # "Label|https://..." entries separated by ";" (TT_SUPPORT_CONTACTS).
    support_contacts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    rules_dir: Path = SHIPPED_RULES
    secret_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    sources: tuple[HttpSourceSettings | SqlSourceSettings, ...] = field(default=())
    history_years: float = DEFAULT_HISTORY_YEARS
    # Signs the decision log's checkpoints (HMAC-SHA256) and checks their signatures; only the
    # `audit` commands use it.
    audit_key: str | None = field(default=None, repr=False)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    web: WebSettings = field(default_factory=WebSettings)
    # Drop folders the scheduler takes feed files from, and how often it looks.
    drop_dirs: tuple[Path, ...] = ()
    poll_seconds: float = DEFAULT_POLL_SECONDS
    # The scheduler: how often the HTTP and SQL sources are pulled, and how long its intake
    # or dispatch may go without success before /readyz fails.
    pull_seconds: float = DEFAULT_PULL_SECONDS
    scheduler_stale_seconds: float = DEFAULT_SCHEDULER_STALE_SECONDS
    # Retention of the access log and of what the decision log saw (its inputs and
    # explanations; the chain itself stays). None: as long as the history (history_years).
    access_log_years: float | None = None
    decision_log_years: float | None = None

    @property
    def audit_key_bytes(self) -> bytes | None:
        return self.audit_key.encode() if self.audit_key is not None else None

    @property
    def history_days(self) -> int:
        """The history in whole days: 5 years is 1,826 days, the indicators' `5y` window."""
        return int(self.history_years * 365.25)

    @property
    def access_log_days(self) -> int:
        return int((self.access_log_years or self.history_years) * 365.25)

    @property
    def decision_log_days(self) -> int:
        return int((self.decision_log_years or self.history_years) * 365.25)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        sources_file = _value(env, "TT_SOURCES_FILE")
        return cls(
            database_url=_secret(env, "TT_DATABASE_URL") or DEFAULT_DATABASE_URL,
            rules_dir=Path(_value(env, "TT_RULES_DIR") or SHIPPED_RULES),
            secret_key=_value(env, "TT_SECRET_KEY"),
            base_url=_value(env, "TT_BASE_URL"),
            sources=load_sources(Path(sources_file), env) if sources_file else (),
            history_years=_history_years(_value(env, "TT_HISTORY_YEARS")),
            audit_key=_audit_key(env),
            delivery=DeliverySettings(
                smtp_url=_secret(env, "TT_SMTP_URL"),
                email_from=_value(env, "TT_EMAIL_FROM"),
                teams_webhook_url=_secret(env, "TT_TEAMS_WEBHOOK_URL"),
                graph_tenant_id=_value(env, "TT_GRAPH_TENANT_ID"),
                graph_client_id=_value(env, "TT_GRAPH_CLIENT_ID"),
                graph_client_secret=_secret(env, "TT_GRAPH_CLIENT_SECRET"),
                graph_sender=_value(env, "TT_GRAPH_SENDER"),
                graph_authority=_value(env, "TT_GRAPH_AUTHORITY"),
                graph_endpoint=(_value(env, "TT_GRAPH_ENDPOINT") or DEFAULT_GRAPH_ENDPOINT).rstrip(
                    "/"
                ),
            ),
            web=WebSettings(
                oidc_client_id=_value(env, "TT_OIDC_CLIENT_ID"),
                oidc_client_secret=_secret(env, "TT_OIDC_CLIENT_SECRET"),
                oidc_authority=_value(env, "TT_OIDC_AUTHORITY"),
                dev_login=_boolean(env, "TT_DEV_LOGIN"),
                support_contacts=_support_contacts(_value(env, "TT_SUPPORT_CONTACTS")),
            ),
            drop_dirs=tuple(
                Path(part.strip())
                for part in (_value(env, "TT_DROP_DIRS") or "").split(",")
                if part.strip()
            ),
            poll_seconds=_seconds(env, "TT_POLL_SECONDS", DEFAULT_POLL_SECONDS, 1, 3600),
            pull_seconds=_seconds(env, "TT_PULL_SECONDS", DEFAULT_PULL_SECONDS, 10, 86400),
            scheduler_stale_seconds=_seconds(
                env, "TT_SCHEDULER_STALE_SECONDS", DEFAULT_SCHEDULER_STALE_SECONDS, 60, 86400
            ),
            access_log_years=_years(env, "TT_ACCESS_LOG_YEARS"),
            decision_log_years=_years(env, "TT_DECISION_LOG_YEARS"),
        )


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(env: Mapping[str, str], name: str) -> bool:
    """A strict boolean: 1/true/yes/on or 0/false/no/off; anything else is an error."""
    text = _value(env, name)
    if text is None:
        return False
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise SettingsError(f"{name}: expected 1 or 0 (true/false, yes/no, on/off), not {text!r}")


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = _value(env, name)
    if text is None:
        return default
    try:
        seconds = float(text)
    except ValueError:
        raise SettingsError(f"{name}: not a number of seconds: {text!r}") from None
    if not low <= seconds <= high:
        raise SettingsError(f"{name}: {text}; it must be between {low:g} and {high:g} seconds")
    return seconds


def _years(env: Mapping[str, str], name: str) -> float | None:
    """A retention in years (at least 1, at most 100), or None: as long as the history."""
    text = _value(env, name)
    if text is None:
        return None
    try:
        years = float(text)
    except ValueError:
        raise SettingsError(f"{name}: not a number of years: {text!r}") from None
    if not 1 <= years <= 100:
        raise SettingsError(f"{name}: {text} years; it must be between 1 and 100")
    return years


def _support_contacts(text: str | None) -> tuple[tuple[str, str], ...]:
    if text is None:
        return ()
    contacts = []
    for entry in text.split(";"):
        if not entry.strip():
            continue
        label, sep, link = entry.partition("|")
        if not sep or not label.strip() or not link.strip():
            raise SettingsError(
                f"TT_SUPPORT_CONTACTS: {entry.strip()!r} should be 'Label|https://...' "
                "(entries separated by ';')"
            )
        contacts.append((label.strip(), link.strip()))
    return tuple(contacts)


def _audit_key(env: Mapping[str, str]) -> str | None:
    key = _value(env, "TT_AUDIT_KEY")
    if key == "":  # an empty TT_AUDIT_KEY_FILE: a key nobody meant
        raise SettingsError("TT_AUDIT_KEY_FILE: the file is empty; it must hold the audit key")
    return key


def _history_years(text: str | None) -> float:
    if text is None:
        return DEFAULT_HISTORY_YEARS
    try:
        years = float(text)
    except ValueError:
        raise SettingsError(f"TT_HISTORY_YEARS: not a number of years: {text!r}") from None
    if not DEFAULT_HISTORY_YEARS <= years <= 100:
        raise SettingsError(
            f"TT_HISTORY_YEARS: {text} years; it must be at least {DEFAULT_HISTORY_YEARS:g} (the "
            "indicators look back 5 years) and at most 100"
        )
    return years


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret that goes into a header or a URL: surrounding whitespace (the newline a file
    or an editor leaves) is dropped, and a control character inside is an error that does not
    show the secret."""
    value = _value(env, name)
    if value is None:
        return None
    value = value.strip()
    for index, char in enumerate(value):
        if ord(char) < 32 or ord(char) == 127:
            raise SettingsError(
                f"{name}: holds a control character ({char!r}) at position {index + 1}; remove it"
            )
    return value or None


# Each source setting: its type and the range it must lie in. Integers are TOML integers
# (not "10", not 10.0, not true); numbers are integers or floats; ranges are inclusive.
_INT, _NUMBER, _TEXT, _VERIFY, _COLUMN = "int", "number", "text", "verify", "column"
_HTTP_OPTIONS: dict[str, tuple[str, float, float]] = {
    "feed": (_TEXT, 1, 64),
    "url": (_TEXT, 1, 2000),
    "token_env": (_TEXT, 1, 200),
    "watermark_field": (_COLUMN, 1, 63),
    "page_size": (_INT, 1, 100_000),
    "timeout": (_NUMBER, 0.1, 600),
    "retries": (_INT, 0, 10),
    "verify": (_VERIFY, 0, 0),
    "max_pages": (_INT, 1, 1_000_000),
    "max_seconds": (_NUMBER, 1, 86_400),
}
_SQL_OPTIONS: dict[str, tuple[str, float, float]] = {
    "feed": (_TEXT, 1, 64),
    "url": (_TEXT, 1, 2000),
    "url_env": (_TEXT, 1, 200),
    "query": (_TEXT, 1, 1_000_000),
    "watermark_column": (_COLUMN, 1, 63),
    "chunk_size": (_INT, 1, 1_000_000),
}
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, int | float):
        return f"{value!r}"
    return f"a TOML {type(value).__name__}"


def _plain(number: float) -> str:
    return str(int(number)) if number == int(number) else f"{number:g}"


def _option_problem(key: str, value: Any, kind: str, low: float, high: float) -> str | None:
    """What is wrong with one source setting's value, or None."""
    if kind == _VERIFY:
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and value:
            # requests takes a bundle file or a folder of certificates
            return None if Path(value).exists() else f"no CA bundle file or folder at {value}"
        return f"expected true, false or the path of a CA bundle, got {_toml_type(value)}"
    if kind in (_TEXT, _COLUMN):
        if not isinstance(value, str):
            return f"expected text in quotes, got {_toml_type(value)}"
        if not low <= len(value) <= high:
            return f"expected text of {_plain(low)} to {_plain(high)} characters, got {len(value)}"
        if kind == _COLUMN and not _COLUMN_NAME.fullmatch(value):
            return (
                f"{value!r} is not a plain column name (letters, digits and _, not starting "
                "with a digit); alias it in the query"
            )
        return None
    if kind == _INT and (isinstance(value, bool) or not isinstance(value, int)):
        return f"expected a whole number (no quotes), got {_toml_type(value)}"
    if kind == _NUMBER and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"expected a number (no quotes), got {_toml_type(value)}"
    if not (math.isfinite(value) and low <= value <= high):
        return f"{value!r} is out of range: it must be between {_plain(low)} and {_plain(high)}"
    return None


def load_sources(path: Path, env: Mapping[str, str]) -> tuple[Any, ...]:
    """Pulled sources from a TOML file (`TT_SOURCES_FILE`); secrets stay in the environment.

    ```toml
    [sources.storm]                 # an HTTP endpoint
    type = "http"
    feed = "cc_incidents"
    url = "https://cad.example/api/incidents"
    token_env = "TT_STORM_TOKEN"    # or TT_STORM_TOKEN_FILE

    [sources.niche]                 # a query against the reporting database
    type = "sql"
    feed = "rms_occurrences"
    url_env = "TT_NICHE_URL"
    query = "SELECT ... FROM occurrences"
    watermark_column = "updated_at"
    ```

    Every setting is checked for its type and range here, so a mistake is one line naming
    the file, the source and the setting (SettingsError), never a failure at pull time.
    """
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise SettingsError(f"TT_SOURCES_FILE: can't read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"TT_SOURCES_FILE: {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: {error}") from None
    unknown_top = set(document) - {"sources"}
    if unknown_top:
        raise SettingsError(f"{path}: unknown key(s) {', '.join(sorted(unknown_top))}")
    tables = document.get("sources", {})
    if not isinstance(tables, dict):
        raise SettingsError(f"{path}: sources must be tables, [sources.NAME]")
    return tuple(_source(path, name, spec, env) for name, spec in tables.items())


def _source(
    path: Path, name: str, spec: Any, env: Mapping[str, str]
) -> HttpSourceSettings | SqlSourceSettings:
    where = f"{path}: [sources.{name}]"
    if not isinstance(spec, dict):
        raise SettingsError(f"{where}: expected a table of settings, got {_toml_type(spec)}")
    kind = spec.get("type")
    allowed = (
        {"http": _HTTP_OPTIONS, "sql": _SQL_OPTIONS}.get(kind) if isinstance(kind, str) else None
    )
    if allowed is None:
        raise SettingsError(f'{where}: type must be "http" or "sql", not {kind!r}')
    unknown = set(spec) - set(allowed) - {"type"}
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("feed", "url", "query") if kind == "sql" else ("feed", "url"):
        if key == "url" and kind == "sql" and "url_env" in spec:
            continue
        if key not in spec:
            raise SettingsError(f"{where}: {key} is required")
    for key, value in spec.items():
        if key != "type":
            problem = _option_problem(key, value, *allowed[key])
            if problem:
                raise SettingsError(f"{where}: {key}: {problem}")
    options = {k: v for k, v in spec.items() if k not in ("type", "token_env", "url_env")}
    if kind == "http":
        if not str(options["url"]).lower().startswith(("http://", "https://")):
            raise SettingsError(f"{where}: url: expected an http:// or https:// address")
        token_env = spec.get("token_env")
        token = _secret(env, token_env) if token_env else None
        if token_env and token is None:
            raise SettingsError(f"{where}: {token_env} is not set")
        return HttpSourceSettings(name=name, token=token, **options)
    if "url_env" in spec:
        if "url" in spec:
            raise SettingsError(f"{where}: set url or url_env, not both")
        options["url"] = _secret(env, spec["url_env"])
        if options["url"] is None:
            raise SettingsError(f"{where}: {spec['url_env']} is not set")
    from models.db import url_problem  # SQLAlchemy, only when there is a SQL source

    problem = url_problem(options["url"])
    if problem:
        setting = spec.get("url_env", "url")
        raise SettingsError(f"{where}: {setting}: the database URL {problem}")
    return SqlSourceSettings(name=name, **options)
