"""Turning paths and configured sources into batches for the ingestor."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import sqlalchemy as sa

from engine.csvlane import Staged, stage_csv
from engine.feeds import FEEDS, feed_for_filename
from engine.ingest import BatchReport, Ingestor, feed_rank
from integrations.base import Batch, FeedFormatError
from integrations.files import csv_header, feed_files, move_done, read_file


def expand_paths(paths: Sequence[Path], feed: str | None = None) -> list[Path]:
    """Files as given and the feed files inside folders, in dependency order.

    :raise FeedFormatError: a path that does not exist.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(feed_files(path))
        elif path.exists():
            files.append(path)
        else:
            raise FeedFormatError(str(path), "no such file or folder")
    return sorted(files, key=lambda p: (feed_rank(feed or feed_for_filename(p.name)), p.name))


def file_batch(path: Path, feed: str | None = None, *, move: bool = False) -> Batch:
    """One file as a batch; with `move`, it goes to processed/ or failed/ once handled.

    :raise FeedFormatError: the file can't be opened as a feed file.
    """
    name = feed or feed_for_filename(path.name)
    columns = FEEDS[name].columns if name in FEEDS else None
    try:
        batch = read_file(path, feed=name, columns=columns)
    except FeedFormatError as error:
        if move and path.exists():
            move_done(path, False, error.message)
        raise
    if move:
        batch.done = lambda ok, reason: move_done(path, ok, reason)
    return batch


def default_jobs(dialect: str) -> int:
    """Files worked on at once unless told: on PostgreSQL one per CPU (loads side by side
    gain little beyond a few, and each holds a connection); on SQLite one more, as its one
    writer spends much of its time waiting on the disk while the others prepare files."""
    cpus = os.cpu_count() or 1
    return min(4, cpus if dialect == "postgresql" else cpus + 1)


# Feeds whose rows others look up at ingest (rows naming an unknown person are held), so
# they go in first, before files of other feeds are stored side by side.
LOOKED_UP = ("units", "people")


def ingest_files(
    ingestor: Ingestor,
    paths: Sequence[Path],
    *,
    feed: str | None = None,
    move: bool = False,
    jobs: int | None = 1,
    prepare_ahead: bool | None = None,
) -> Iterator[BatchReport]:
    """Ingest files one transaction each; a file that fails whole is reported, not raised.
    Reports come in the order of `expand_paths`.

    With `jobs` > 1 on PostgreSQL, files of different feeds are stored side by side, up to
    `jobs` at once, each in its own transaction and connection. Each feed's files still go
    one after another in order (a later file's rows win), and units and people go before
    the rest, as rows of other feeds are held when they name a person not yet known. An
    error other than a file that can't be read as its feed stops every lane before its next
    file; the files stored by then are reported, and the error is raised. SQLite takes one
    writer at a time, so there files are stored one by one, while up to `jobs` - 1 other
    processes prepare the next ones (when the load is large enough for that to pay, or
    `prepare_ahead` says so). `jobs=None` is `default_jobs` for the database.
    """
    files = expand_paths(paths, feed)
    if jobs is None:
        jobs = default_jobs(ingestor.engine.dialect.name)
    if ingestor.engine.dialect.name != "postgresql":
        if prepare_ahead is None:
            prepare_ahead = _prepare_ahead_pays(ingestor, files)
        if jobs > 1 and prepare_ahead:
            yield from _prepared_ahead(ingestor, files, feed, move, workers=jobs - 1)
        else:
            yield from _in_order(ingestor, files, feed, move)
        return
    if jobs < 2:
        yield from _in_order(ingestor, files, feed, move)
        return
    # The other files, in order; a lane holds its files' places here.
    rest = yield from _looked_up_first(ingestor, files, feed, move)
    lanes: dict[str | None, list[int]] = {}
    for n, path in enumerate(rest):
        lanes.setdefault(feed or feed_for_filename(path.name), []).append(n)
    # The largest lanes first, so that the small ones fill in beside them at the end.
    ordered = sorted(lanes.values(), key=lambda lane: -sum(_size(rest[n]) for n in lane))
    reports: dict[int, BatchReport] = {}
    stop = threading.Event()  # set on an error: every lane stops before its next file

    def run(lane: list[int]) -> None:
        for n in lane:
            if stop.is_set():
                return
            try:
                [reports[n]] = _in_order(ingestor, [rest[n]], feed, move)
            except BaseException:
                stop.set()
                raise

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="tt-ingest")
    failure: BaseException | None = None
    try:
        for future in [pool.submit(run, lane) for lane in ordered]:
            future.result()
    except BaseException as error:  # a lane's error, or an interrupt while waiting
        failure = error
        stop.set()
    finally:
        # Files being stored finish (each is one transaction); lanes not started never do.
        pool.shutdown(wait=True, cancel_futures=True)
    # What was stored is reported, as one by one would have before stopping at the error.
    for n in sorted(reports):
        yield reports[n]
    if failure is not None:
        raise failure


def _looked_up_first(
    ingestor: Ingestor, files: Sequence[Path], feed: str | None, move: bool
) -> Generator[BatchReport, None, list[Path]]:
    """Store the units and people files one by one, before any other file is stored or
    prepared; returns the other files, in order."""
    named = [(path, feed or feed_for_filename(path.name)) for path in files]
    yield from _in_order(ingestor, [p for p, name in named if name in LOOKED_UP], feed, move)
    return [path for path, name in named if name not in LOOKED_UP]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # gone: its lane reports that


def _in_order(
    ingestor: Ingestor, files: Sequence[Path], feed: str | None, move: bool
) -> Iterator[BatchReport]:
    for path in files:
        yield from _store(ingestor, path, _open(path, feed, move), feed)


def _open(path: Path, feed: str | None, move: bool) -> Batch | FeedFormatError:
    try:
        return file_batch(path, feed, move=move)
    except FeedFormatError as error:
        return error


def _store(
    ingestor: Ingestor,
    path: Path,
    batch: Batch | FeedFormatError,
    feed: str | None,
    staged: Staged | None = None,
) -> Iterator[BatchReport]:
    """Ingest one opened file; a file that can't be read as its feed is reported, not raised."""
    if isinstance(batch, FeedFormatError):
        ingestor.record_unreadable(str(path), feed or feed_for_filename(path.name), batch.message)
        yield BatchReport(path=str(path), feed=feed, outcome="failed", message=batch.message)
        return
    try:
        yield ingestor.ingest(batch, feed=feed, staged=staged)
    except FeedFormatError as error:
        yield BatchReport(
            path=str(path), feed=feed or batch.feed, outcome="failed", message=error.message
        )


# Preparing files in other processes pays once a load is large enough to outweigh starting
# them (about a second); below this many bytes of CSV, files are prepared as they are stored.
PREPARE_AHEAD_BYTES = 32 * 1024 * 1024


def _prepare_ahead_pays(ingestor: Ingestor, files: Sequence[Path]) -> bool:
    csv_files = [path for path in files if path.suffix.lower() == ".csv"]
    return len(csv_files) > 1 and sum(map(_size, csv_files)) >= PREPARE_AHEAD_BYTES


def _prepared_ahead(
    ingestor: Ingestor, files: Sequence[Path], feed: str | None, move: bool, workers: int
) -> Iterator[BatchReport]:
    """SQLite, one writer: while a file is stored, the next ones are checked and their rows
    written to scratch files by `workers` other processes (`engine.csvlane.stage_csv`), so
    this process only moves rows from there into the database, without binding a value.

    Units and people go first, one by one: the others are prepared against the people they
    leave stored (rows naming anyone else are held). A file is opened (hashed, and moved
    once done) only at its turn, so what becomes of each file, and of the files before an
    error, is what one by one gives; whatever a worker could not do, the writer does.
    """
    rest = yield from _looked_up_first(ingestor, files, feed, move)
    if not rest:
        return
    with ingestor.engine.connect() as conn:
        people = Ingestor.known_people(conn)
    scratch = _scratch_folder(ingestor.engine)
    spawn = multiprocessing.get_context("spawn")  # polars' threads do not survive a fork
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn)
    ahead: deque[tuple[Path, Future | None]] = deque()

    def submit(n: int, path: Path) -> None:
        database = scratch / f"{n}.sqlite"
        future = _stage(pool, path, feed, people, database) if ingestor.fast_csv else None
        ahead.append((path, future))

    try:
        waiting = iter(enumerate(rest))
        # One file per worker: none waits in a queue, so an error stops them soon.
        for n, path in itertools.islice(waiting, workers):
            submit(n, path)
        while ahead:
            path, future = ahead.popleft()
            for n, following in itertools.islice(waiting, 1):
                submit(n, following)
            staged = _staged(future)
            try:
                yield from _store(ingestor, path, _open(path, feed, move), feed, staged)
            finally:
                if staged is not None:
                    Path(staged.database).unlink(missing_ok=True)
    finally:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


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


def _stage(
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
        header = csv_header(path)  # reads the first line; moves and records nothing
        known = people if FEEDS[name].person_field else None
        return pool.submit(stage_csv, str(path), name, header, known, str(database))
    except (FeedFormatError, OSError, BrokenProcessPool):
        return None  # the writer meets the problem at the file's turn, as one by one would


def _staged(future: Future | None) -> Staged | None:
    if future is None:
        return None
    try:
        return future.result()
    except Exception:
        # The file went or changed, the scratch disk is full, a worker was killed: the
        # writer prepares the file itself, and reports any problem with it as one by one.
        return None
