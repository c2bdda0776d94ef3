"""SQLite, one writer: the next CSV files are checked and staged in other processes while
one is stored.

While a file is stored, up to `workers` other processes each read one of the next files,
check it as `engine.ingest.csv_columns` does and write the rows to store into a scratch SQLite file
(`engine.ingest.csv_columns.stage_csv`). At the file's turn the writer attaches that scratch file
and
moves the rows in without binding a value (`engine.ingest.rows.batch_rows`). A file is still
opened (hashed, and moved once done) only at its turn, so what becomes of each file, and of
the files before an error, is what one by one gives: whatever a worker could not do (it
failed, or the file changed since), the writer does, and a worker's failure is logged.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from engine.ingest.batches import BatchReport, Ingestor
from engine.ingest.csv_columns import STAGED_TABLE, Staged, stage_csv
from engine.ingest.feeds import FEEDS, feed_for_filename
from integrations.base import FeedFormatError
from integrations.files import header_of

log = logging.getLogger(__name__)

StoreFile = Callable[[Path, Staged | None], BatchReport]
"""Store one file at its turn, with what a worker prepared of it (or None)."""

# Preparing files in other processes pays once a load is large enough to outweigh starting
# them (about a second); below this many bytes of CSV, files are prepared as they are stored.
PREPARE_AHEAD_BYTES = 32 * 1024 * 1024


def pays(files: Sequence[Path]) -> bool:
    csv_files = [path for path in files if path.suffix.lower() == ".csv"]
    return len(csv_files) > 1 and sum(map(_size, csv_files)) >= PREPARE_AHEAD_BYTES


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # gone: its turn reports that


def store_prepared_ahead(
    ingestor: Ingestor,
    files: Sequence[Path],
    store: StoreFile,
    feed: str | None,
    workers: int,
) -> Iterator[BatchReport]:
    """Store `files` one by one, in order, preparing up to `workers` of the next ones in
    other processes against the people stored now (rows naming anyone else are held, and a
    file prepared before someone it names arrived is prepared again by the writer)."""
    if not files:
        return
    with ingestor.engine.connect() as conn:
        people = Ingestor.known_people(conn)
    scratch = _scratch_folder(ingestor.engine)
    spawn = multiprocessing.get_context("spawn")  # polars' threads do not survive a fork
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn)
    ahead: deque[tuple[Path, Future | None]] = deque()

    def submit(n: int, path: Path) -> None:
        database = scratch / f"{n}.sqlite"
        future = stage(pool, path, feed, people, database) if ingestor.fast_csv else None
        ahead.append((path, future))

    try:
        waiting = iter(enumerate(files))
        # One file per worker: none waits in a queue, so an error stops them soon.
        for n, path in itertools.islice(waiting, workers):
            submit(n, path)
        while ahead:
            path, future = ahead.popleft()
            for n, following in itertools.islice(waiting, 1):
                submit(n, following)
            prepared = outcome(future, path)
            try:
                yield store(path, prepared)
            finally:
                if prepared is not None:
                    Path(prepared.database).unlink(missing_ok=True)
    finally:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def stage(
    pool: ProcessPoolExecutor,
    path: Path,
    feed: str | None,
    people: frozenset[str],
    database: Path,
) -> Future | None:
    """Hand a CSV file to a worker, or None for a file that is left to its turn."""
    name = feed or feed_for_filename(path.name)
    if name not in FEEDS or path.suffix.lower() != ".csv":
        return None
    try:
        header = header_of(path)  # the first line only; moves and records nothing
    except (FeedFormatError, OSError):
        return None  # the writer meets the problem at the file's turn, as one by one would
    known = people if FEEDS[name].person_field else None
    try:
        return pool.submit(stage_csv, str(path), name, header, known, str(database))
    except BrokenProcessPool as error:
        _log_failure(path, error)
        return None


def outcome(future: Future | None, path: Path) -> Staged | None:
    """What a worker made of `path`, or None when it made nothing the writer can use: the
    file went or changed, the scratch disk is full, a worker was killed. Then the writer
    prepares the file itself and reports any problem with it as one by one would; the
    worker's failure is logged, as it may be the disk or the machine."""
    if future is None:
        return None
    try:
        return future.result()
    except Exception as error:
        _log_failure(path, error)
        return None


def _log_failure(path: Path, error: BaseException) -> None:
    # No file name (a force may name files after what is in them, see trauma_tracker.jobs)
    # and no values: the feed, and the error, which is the disk's or the machine's.
    log.warning(
        "preparing a %s file in another process failed (%s: %s); the writer prepares it",
        feed_for_filename(path.name) or "feed",
        type(error).__name__,
        str(error)[:200],
    )


# -- the scratch files ----------------------------------------------------------------------

SCRATCH_PREFIX = ".trauma-tracker-stage-"


def _scratch_folder(engine: sa.Engine) -> Path:
    """A folder for the scratch files of one load, beside the database file (on the same
    disk, and as private as the database: the files hold its rows until they are stored),
    readable by this user only. Folders left by a load that was killed go first."""
    database = engine.url.database
    parent = Path(database).resolve().parent if database and database != ":memory:" else None
    parent = parent or Path(tempfile.gettempdir())
    for folder in parent.glob(f"{SCRATCH_PREFIX}*"):
        pid = folder.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


# -- on the writer's connection -------------------------------------------------------------

# The schema name a scratch file is attached under while its batch is stored.
SCHEMA = "staged"


@contextmanager
def attached(conn: sa.Connection, prepared: Staged) -> Iterator[str]:
    """`prepared`'s scratch file attached to the connection for the block; yields the name
    of its table. SQLite attaches only outside a transaction, so this goes around the
    batch's transaction."""
    driver = conn.connection.driver_connection
    driver.execute(f"ATTACH DATABASE ? AS {SCHEMA}", (prepared.database,))
    try:
        yield f"{SCHEMA}.{STAGED_TABLE}"
    except BaseException:
        _detach(conn, driver)
        raise
    _detach(conn, driver)


def _detach(conn: sa.Connection, driver) -> None:
    try:
        driver.execute(f"DETACH DATABASE {SCHEMA}")
    except sqlite3.Error:
        # Still in a transaction that failed to end: this connection must not go back to
        # the pool with the file attached. An error already on its way is the one raised.
        conn.invalidate()
        if sys.exc_info()[1] is None:
            raise
