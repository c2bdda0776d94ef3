"""The database: engines, schema migrations, and whether the schema is current.

A database URL that can't be used, or a database that can't be reached, is a DatabaseError
whose one-line message names the setting's problem and never the password: SQLAlchemy's own
errors quote the URL (an unencoded `@` in a password puts the rest of it in the host name).
A SQLite file is created readable by its owner only (0600; SQLite gives its -wal and -shm
files the same mode): it holds special-category data.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaNotCurrent(Exception):
    """The database is missing or behind the code's migrations."""


class DatabaseError(Exception):
    """The database URL can't be used, or the database can't be reached (no password in it)."""


def url_problem(url: str) -> str | None:
    """What is wrong with a database URL as written, without quoting it; None when usable."""
    if any(ord(char) < 32 or ord(char) == 127 for char in url):
        return "holds a control character (a newline at the end?)"
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return "can't be read (expected dialect+driver://user:password@host/database)"
    if parsed.host and "@" in parsed.host:
        return "has an unencoded '@' in the password or user name: write it as %40"
    return None


def describe(url: sa.URL | str) -> str:
    """A URL fit for messages: the password hidden."""
    if isinstance(url, str):
        url = sa.engine.make_url(url)
    return url.render_as_string(hide_password=True)


def make_engine(url: str) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so a reader never blocks ingest.

    Nothing is connected yet. :raise DatabaseError: the URL can't be read, or names a dialect
    or driver that is not installed.
    """
    problem = url_problem(url)
    if problem:
        raise DatabaseError(f"the database URL (--db or TT_DATABASE_URL) {problem}")
    try:
        return _make_engine(url)
    except sa.exc.NoSuchModuleError:
        dialect = sa.engine.make_url(url).drivername
        raise DatabaseError(
            f"the database URL (--db or TT_DATABASE_URL) names an unknown dialect {dialect!r} "
            "(use sqlite:/// or postgresql+psycopg://)"
        ) from None
    except (ImportError, sa.exc.ArgumentError) as error:
        raise DatabaseError(
            f"can't use {describe(url)}: {_first_line(error, sa.engine.make_url(url))}"
        ) from None


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        database = engine.url.database

        @sa.event.listens_for(engine, "do_connect")
        def _owner_only(_dialect, _record, _args, _kwargs):
            if database and database != ":memory:" and not database.startswith("file:"):
                _create_owner_only(database)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # 64 MiB of page cache: bulk upserts into keyed tables of millions of rows run
            # about 1.5 times faster than with the 2 MiB default.
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        return engine
    engine = sa.create_engine(url)
    _ping_after_idle(engine)
    return engine


# A pooled connection idle this long is pinged before use: one that the server dropped in a
# restart or a network blip is replaced instead of failing a request. Pinging on every
# checkout (pool_pre_ping) was a fifth of a web page's time, as a page makes several reads.
IDLE_PING_SECONDS = 10.0


def _ping_after_idle(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record):
        record.info["tt_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        idle_since = record.info.get("tt_idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool then opens a new connection in its place.
            raise sa.exc.DisconnectionError("the database dropped an idle connection") from error


def _create_owner_only(path: str) -> None:
    # SQLite would create the file as 0666 less the umask (0644 under 022).
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:  # there already (its mode is kept), or no such folder: SQLite says so
        return


def _first_line(error: BaseException, url: sa.URL) -> str:
    """The driver's words, one line, without SQLAlchemy's statement dump, help link or the
    password in any form."""
    original = getattr(error, "orig", None)
    text = " ".join(str(original if original is not None else error).split())
    if url.password:
        password = str(url.password)
        for form in sorted({password, quote(password, safe=""), repr(password)[1:-1]}, key=len)[
            ::-1
        ]:
            text = text.replace(form, "***")
    return text


def connect(engine: sa.Engine) -> sa.Connection:
    """`engine.connect()`; :raise DatabaseError: the database can't be reached or opened
    (refused, no such database, bad password), with the driver's reason."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as error:
        raise DatabaseError(
            f"can't connect to {describe(engine.url)}: {_first_line(error, engine.url)}"
        ) from None


# Alembic (and its loading of every migration script) is imported only to migrate, or to
# word the message when the schema is not current: a reading command checks the stored
# revision against the head read from the scripts' text, in a few milliseconds.
_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


@contextmanager
def connected(bind: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """A connection to read on: `bind` itself when it is one (the caller's, left open, as a
    web request's reads share one), else a new one from the engine, closed afterwards."""
    if isinstance(bind, sa.Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def _alembic_config(engine: sa.Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: sa.Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest migration; returns (before, after) revisions."""
    from alembic import command

    before = current_revision(engine)
    command.upgrade(_alembic_config(engine), "head")
    return before, head_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


@functools.cache
def head_from_scripts() -> str | None:
    """The newest revision as the migration scripts' text gives it (the one no script names
    as its down_revision), or None when the text does not give exactly one."""
    revisions: set[str] = set()
    named: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        named.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - named
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: sa.Engine) -> str | None:
    """:raise DatabaseError: the database can't be reached."""
    from alembic.runtime.migration import MigrationContext

    with connect(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _stored_revision(engine: sa.Engine) -> str | None:
    with connect(engine) as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        found = list(versions)
    return found[0] if len(found) == 1 else None


def require_current(engine: sa.Engine) -> None:
    """Raise SchemaNotCurrent unless the database is at the newest migration.

    :raise DatabaseError: the database can't be reached.
    """
    head = head_from_scripts()
    if head is not None and _stored_revision(engine) == head:
        return
    current = current_revision(engine)
    if current != head_revision():
        state = "has no schema" if current is None else f"is at revision {current}"
        raise SchemaNotCurrent(
            f"the database {engine.url.render_as_string(hide_password=True)} {state}; "
            "run `trauma-tracker init` to create or upgrade it"
        )
