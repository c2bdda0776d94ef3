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

    @property
    def audit_key_bytes(self) -> bytes | None:
        return self.audit_key.encode() if self.audit_key is not None else None

    @property
    def history_days(self) -> int:
        """The history in whole days: 5 years is 1,826 days, the indicators' `5y` window."""
        return int(self.history_years * 365.25)

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
        )


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
