"""One active scheduler per database.

PostgreSQL: the active instance holds a session-level advisory lock on a connection of its
own (not from any pool, so nothing else can use or return it). When the process dies, the
server ends its session and the lock goes with it; a standby polling every few seconds then
takes it. The server is told to probe an idle client after 15 seconds (keepalives), so even
a machine that vanishes without closing its connection loses the lock within a minute.

SQLite: one instance. An exclusive lock (fcntl.flock) on a file beside the database; the
kernel drops it when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

log = logging.getLogger("trauma_tracker.election")

# pg_try_advisory_lock(class, key): the class is "tTsc"; the key is the schema's hash, so
# two trackers in two schemas of one database each get their own scheduler.
LOCK_CLASS = 0x7454_7363
KEEPALIVE = (
    "SET tcp_keepalives_idle = 15",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
    "SET idle_session_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
)


class AlreadyRunning(Exception):
    """Another scheduler holds the only place (SQLite): this one must not start."""


class PostgresLock:
    """The scheduler lock on PostgreSQL; `acquire` may be called again and again (standby)."""

    standby = True

    def __init__(self, url: str):
        self.engine = sa.create_engine(url, poolclass=NullPool)
        self.conn: sa.Connection | None = None

    def acquire(self) -> bool:
        """Try once; True once this instance holds the lock."""
        if self.conn is None:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            for statement in KEEPALIVE:
                try:
                    conn.execute(sa.text(statement))
                except sa.exc.ProgrammingError:  # an older server without the setting
                    log.info("scheduler lock: setting not supported", extra={"sql": statement})
            self.conn = conn
        try:
            held = self.conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:class, hashtext(current_schema()))"),
                {"class": LOCK_CLASS},
            ).scalar_one()
        except sa.exc.DBAPIError:
            self._drop()
            raise
        return bool(held)

    def held(self) -> bool:
        """Whether the lock's connection is still alive (the session, and so the lock)."""
        if self.conn is None:
            return False
        try:
            self.conn.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self.conn is not None:
            # A session already gone took the lock with it.
            with contextlib.suppress(sa.exc.DBAPIError):
                self.conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:class, hashtext(current_schema()))"),
                    {"class": LOCK_CLASS},
                )
            self._drop()
        self.engine.dispose()

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):  # broken: closing is all there is
                self.conn.close()
            self.conn = None


class SqliteLock:
    """The scheduler lock on SQLite: a lock file beside the database, `DB.scheduler.lock`."""

    standby = False

    def __init__(self, database: str):
        self.path = Path(f"{Path(database).resolve()}.scheduler.lock")
        self.fd: int | None = None

    def acquire(self) -> bool:
        """:raise AlreadyRunning: another process holds the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another scheduler is already running against this SQLite database "
                f"(process {holder}, lock file {self.path}); SQLite takes one instance: "
                "stop it first, or use PostgreSQL to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return True

    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def scheduler_lock(url: str) -> PostgresLock | SqliteLock:
    """The lock for the database at `url`."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresLock(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("the scheduler needs a database file, not an in-memory SQLite")
        return SqliteLock(parsed.database)
    raise ValueError(f"the scheduler runs on PostgreSQL or SQLite, not {parsed.get_backend_name()}")
