"""Settings from the environment (CONTRACT section 4): read here once and passed down.

A secret may be given as a file: `TT_X_FILE=/run/secrets/x` instead of `TT_X=...`. Parsing is
strict: a value that can't be used is an error naming the variable, not a silent default.
"""

from __future__ import annotations

import os
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
    url: str
    token: str | None = None
    watermark_field: str = "updated_at"
    page_size: int = 1000
    timeout: float = 10.0
    retries: int = 3
    verify: bool | str = True


@dataclass(frozen=True)
class SqlSourceSettings:
    name: str
    feed: str
    url: str
    query: str
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
            database_url=_value(env, "TT_DATABASE_URL") or DEFAULT_DATABASE_URL,
            rules_dir=Path(_value(env, "TT_RULES_DIR") or SHIPPED_RULES),
            secret_key=_value(env, "TT_SECRET_KEY"),
            base_url=_value(env, "TT_BASE_URL"),
            sources=load_sources(Path(sources_file), env) if sources_file else (),
            history_years=_history_years(_value(env, "TT_HISTORY_YEARS")),
            audit_key=_audit_key(env),
            delivery=DeliverySettings(
                smtp_url=_value(env, "TT_SMTP_URL"),
                email_from=_value(env, "TT_EMAIL_FROM"),
                teams_webhook_url=_value(env, "TT_TEAMS_WEBHOOK_URL"),
                graph_tenant_id=_value(env, "TT_GRAPH_TENANT_ID"),
                graph_client_id=_value(env, "TT_GRAPH_CLIENT_ID"),
                graph_client_secret=_value(env, "TT_GRAPH_CLIENT_SECRET"),
                graph_sender=_value(env, "TT_GRAPH_SENDER"),
                graph_authority=_value(env, "TT_GRAPH_AUTHORITY"),
                graph_endpoint=(_value(env, "TT_GRAPH_ENDPOINT") or DEFAULT_GRAPH_ENDPOINT).rstrip(
                    "/"
                ),
            ),
            web=WebSettings(
                oidc_client_id=_value(env, "TT_OIDC_CLIENT_ID"),
                oidc_client_secret=_value(env, "TT_OIDC_CLIENT_SECRET"),
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


_HTTP_KEYS = {
    "type",
    "feed",
    "url",
    "token_env",
    "watermark_field",
    "page_size",
    "timeout",
    "retries",
    "verify",
}
_SQL_KEYS = {"type", "feed", "url", "url_env", "query", "watermark_column", "chunk_size"}


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
    """
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise SettingsError(f"TT_SOURCES_FILE: can't read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: {error}") from None
    unknown_top = set(document) - {"sources"}
    if unknown_top:
        raise SettingsError(f"{path}: unknown key(s) {', '.join(sorted(unknown_top))}")
    sources: list[Any] = []
    for name, spec in document.get("sources", {}).items():
        where = f"{path}: [sources.{name}]"
        kind = spec.get("type")
        allowed = {"http": _HTTP_KEYS, "sql": _SQL_KEYS}.get(kind)
        if allowed is None:
            raise SettingsError(f'{where}: type must be "http" or "sql", not {kind!r}')
        unknown = set(spec) - allowed
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "feed" not in spec:
            raise SettingsError(f"{where}: feed is required")
        options = {k: v for k, v in spec.items() if k not in ("type", "token_env", "url_env")}
        try:
            if kind == "http":
                token_env = spec.get("token_env")
                token = _value(env, token_env) if token_env else None
                if token_env and token is None:
                    raise SettingsError(f"{where}: {token_env} is not set")
                sources.append(HttpSourceSettings(name=name, token=token, **options))
            else:
                if "url_env" in spec:
                    options["url"] = _value(env, spec["url_env"])
                    if options["url"] is None:
                        raise SettingsError(f"{where}: {spec['url_env']} is not set")
                sources.append(SqlSourceSettings(name=name, **options))
        except TypeError as error:
            raise SettingsError(f"{where}: {error}") from None
    return tuple(sources)
