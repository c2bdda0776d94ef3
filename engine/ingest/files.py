"""Files and folders as batches for the ingestor, and what becomes of a drop folder's files.

`ingest_files` is the one way files go in. It lists the folders given (only regular files
are read: see `integrations.files`), stores each file in one transaction, and with `move`
treats each folder as a drop folder that other systems write to:
- one run at a time: a run finding another at work on a folder leaves that folder to it
  (an advisory lock, `flock`, on the folder itself);
- a file is taken only once it has been unchanged in size and time for `SETTLE_SECONDS`;
  one still being written is left for the next run;
- a stored file moves to processed/ only if it still holds what was stored; a file that
  can't be used moves to failed/ with a reason (a link or other non-regular file: the entry
  itself, not what it points to); a file that can't be moved stays, with a message, and
  the run goes on.
How many files are worked on at once is `engine.ingest.side_by_side` (PostgreSQL) and
`engine.ingest.prepare_ahead` (SQLite); reports come in the order of `expand_paths` either way.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy.exc import InterfaceError, OperationalError

from engine.ingest.batches import BatchReport, Ingestor, feed_rank
from engine.ingest.feeds import FEEDS, feed_for_filename
from integrations.base import FeedFormatError
from integrations.files import (
    FAILED,
    PROCESSED,
    FileState,
    Refused,
    folder_entries,
    move_done,
    read_file,
    shown,
    unchanged,
)

# A file in a drop folder is taken once it has been unchanged for this long (README: "Drop
# folders"). Writers that can should write under a temporary name and rename it instead.
SETTLE_SECONDS = 2.0

# Feeds whose rows others look up at ingest (rows naming an unknown person are held), so
# they go in first, before files of other feeds are stored side by side or prepared ahead.
LOOKED_UP = ("units", "people")


def expand_paths(paths: Sequence[Path], feed: str | None = None) -> list[Path]:
    """Files as given and the feed files inside folders, in dependency order.

    :raise FeedFormatError: a path that does not exist.
    """
    return _listing(paths, feed)[0]


def _listing(
    paths: Sequence[Path], feed: str | None
) -> tuple[list[Path], list[Refused], set[Path]]:
    """The files in order, the folder entries refused, and which files came from folders."""
    files: list[Path] = []
    refused: list[Refused] = []
    for path in map(Path, paths):
        if path.is_dir():
            try:
                found, turned_away = folder_entries(path)
            except OSError as error:
                raise FeedFormatError(shown(path), f"can't be read ({error.strerror})") from None
            files.extend(found)
            refused.extend(turned_away)
        elif os.path.lexists(path):
            files.append(path)
        else:
            raise FeedFormatError(shown(path), "no such file or folder")
    in_folders = set(files) - {Path(p) for p in paths}
    ordered = sorted(files, key=lambda p: (feed_rank(feed or feed_for_filename(p.name)), p.name))
    return ordered, refused, in_folders


def default_jobs(dialect: str) -> int:
    """Files worked on at once unless told: on PostgreSQL one per CPU (loads side by side
    gain little beyond a few, and each holds a connection); on SQLite one more, as its one
    writer spends much of its time waiting on the disk while the others prepare files."""
    cpus = os.cpu_count() or 1
    return min(4, cpus if dialect == "postgresql" else cpus + 1)


def ingest_files(
    ingestor: Ingestor,
    paths: Sequence[Path],
    *,
    feed: str | None = None,
    move: bool = False,
    jobs: int | None = 1,
    prepare_ahead: bool | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> Iterator[BatchReport]:
    """Ingest files one transaction each; a file that fails whole is reported, not raised.
    With `move`, folders are drop folders (see the module's docstring).

    With `jobs` > 1, PostgreSQL stores files of different feeds side by side and SQLite
    prepares the next files in other processes while one is stored (when the load is large
    enough for that to pay, or `prepare_ahead` says so); `jobs=None` is `default_jobs`.
    Units and people go first either way. An error other than a file that can't be read as
    its feed stops the run before the next file; the files stored by then are reported,
    and the error is raised.

    :raise FeedFormatError: a path that does not exist.
    """
    paths = [Path(p) for p in paths]
    with ExitStack() as locks:
        if move:
            busy = [folder for folder in _drop_folders(paths) if not _lock(locks, folder)]
            for folder in busy:
                yield BatchReport(
                    path=shown(folder),
                    feed=None,
                    outcome="skipped",
                    message="another `ingest --move` is at work on this folder: its files "
                    "are left to it",
                )
            paths = [p for p in paths if _folder_of(p) not in busy]
        files, refused, in_folders = _listing(paths, feed)
        for entry in refused:
            yield _refuse(ingestor, entry, feed, move)
        if move:
            files, writing = _settled(files, in_folders, settle_seconds)
            for path in writing:
                yield BatchReport(
                    path=shown(path),
                    feed=feed or feed_for_filename(path.name),
                    outcome="waiting",
                    message=f"still being written (changed in the last {settle_seconds:g} s): "
                    "left for the next run",
                )
        yield from _store_all(ingestor, files, in_folders, feed, move, jobs, prepare_ahead)


def _store_all(ingestor, files, in_folders, feed, move, jobs, prepare_ahead):
    def store(path: Path, prepared=None) -> BatchReport:
        return _store_file(ingestor, path, feed, move, path in in_folders, prepared)

    def feed_of(path: Path) -> str | None:
        return feed or feed_for_filename(path.name)

    dialect = ingestor.engine.dialect.name
    if jobs is None:
        jobs = default_jobs(dialect)
    first = [path for path in files if feed_of(path) in LOOKED_UP]
    rest = [path for path in files if feed_of(path) not in LOOKED_UP]
    if jobs > 1 and dialect == "postgresql":
        from engine.ingest.side_by_side import store_side_by_side

        yield from map(store, first)
        yield from store_side_by_side(rest, store, feed_of, jobs)
        return
    if jobs > 1 and dialect != "postgresql":
        from engine.ingest import prepare_ahead as ahead

        if prepare_ahead is None:
            prepare_ahead = ahead.pays(files)
        if prepare_ahead:
            yield from map(store, first)
            yield from ahead.store_prepared_ahead(ingestor, rest, store, feed, jobs - 1)
            return
    yield from map(store, files)


# -- one file ------------------------------------------------------------------------------


def _store_file(
    ingestor: Ingestor,
    path: Path,
    feed: str | None,
    move: bool,
    from_folder: bool,
    prepared=None,
) -> BatchReport:
    """Read, store and (with `move`) move one file; a file that can't be read as its feed
    is reported, not raised."""
    name = shown(path)
    feed_name = feed or feed_for_filename(path.name)
    columns = FEEDS[feed_name].columns if feed_name in FEEDS else None
    try:
        batch, state = read_file(
            path, feed=feed_name, columns=columns, follow_links=not from_folder
        )
    except FileNotFoundError:
        if move:  # another run (or the scheduler) took it between listing and reading
            return BatchReport(
                path=name, feed=feed_name, outcome="skipped", message="gone before it was read"
            )
        return _unreadable(ingestor, path, feed_name, "no such file", move)
    except FeedFormatError as error:
        return _unreadable(ingestor, path, feed_name, error.message, move)
    try:
        report = ingestor.ingest(batch, feed=feed, prepared=prepared)
    except FeedFormatError as error:  # recorded as a failed run by the ingestor
        report = BatchReport(
            path=name, feed=feed or batch.feed, outcome="failed", message=error.message
        )
    except (OperationalError, InterfaceError):
        raise  # the database went away (or is locked): the file stays, for the next run
    except Exception as error:
        if move:  # as one by one has always done: the file goes to failed/ with the error
            _move(path, BatchReport(path=name, feed=feed_name), False, str(error))
        raise
    if move:
        _finish(path, report, state)
    return report


def _unreadable(
    ingestor: Ingestor, path: Path, feed: str | None, message: str, move: bool
) -> BatchReport:
    name = shown(path)
    ingestor.record_unreadable(name, feed, message)
    report = BatchReport(path=name, feed=feed, outcome="failed", message=message)
    if move:
        _move(path, report, False, message)
    return report


def _refuse(ingestor: Ingestor, entry: Refused, feed: str | None, move: bool) -> BatchReport:
    """A folder entry that is not read (a link, a pipe): reported, and moved aside."""
    return _unreadable(
        ingestor, entry.path, feed or feed_for_filename(entry.path.name), entry.reason, move
    )


def _finish(path: Path, report: BatchReport, state: FileState) -> None:
    if report.outcome == "failed":
        _move(path, report, False, report.message)
    elif not unchanged(path, state):
        report.warning = (
            "changed while it was being ingested: what was read is stored, and the file is "
            "left in place for the next run (write a file under a temporary name and rename "
            "it when it is complete)"
        )
    else:
        _move(path, report, True)


def _move(path: Path, report: BatchReport, ok: bool, reason: str | None = None) -> None:
    """Move a file to processed/ or failed/; a file that can't be moved stays where it is,
    and the report says so."""
    folder = PROCESSED if ok else FAILED
    try:
        move_done(path, ok, reason)
        return
    except FileNotFoundError as error:
        if os.path.lexists(path):  # the file is there: what it goes to is not
            problem = f"could not be moved to {folder}/ ({error.strerror}); it stays where it is"
        else:
            problem = f"was gone before it could be moved to {folder}/"
    except OSError as error:
        what = f"{error.strerror}: {shown(error.filename)}" if error.filename else str(error)
        problem = f"could not be moved to {folder}/ ({what}); it stays where it is"
    if ok:
        report.warning = f"stored, but {problem}"
    else:
        report.message = f"{report.message} (and it {problem})"


# -- drop folders ----------------------------------------------------------------------------


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _drop_folders(paths: Sequence[Path]) -> list[Path]:
    folders: dict[str, Path] = {}
    for path in paths:
        folder = _folder_of(path)
        folders.setdefault(os.path.realpath(folder), folder)
    return list(folders.values())


def _lock(locks: ExitStack, folder: Path) -> bool:
    """Take the folder's lock for the run (a lock on the folder itself, so nothing is left
    in it); False if another run holds it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return True  # a folder that can't be opened: listing it reports the problem
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return False
    locks.callback(os.close, descriptor)  # closing it releases the lock
    return True


def _settled(
    files: list[Path], in_folders: set[Path], settle: float
) -> tuple[list[Path], list[Path]]:
    """The files to take now, and those in folders still being written: changed in size or
    time within `settle` seconds. Waits (at most `settle` seconds) for files changed just
    now, rather than leaving them for the next run."""
    candidates = [path for path in files if path in in_folders]
    if settle <= 0 or not candidates:
        return files, []
    before = {path: _stamp(path) for path in candidates}
    now = time.time()
    ages = [now - stamp[1] / 1e9 for stamp in before.values() if stamp is not None]
    wait = max((settle - age for age in ages), default=0.0)
    if wait > 0:
        time.sleep(min(wait, settle))
    writing = {path for path in candidates if _stamp(path) != before[path]}
    return [path for path in files if path not in writing], sorted(writing)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns
