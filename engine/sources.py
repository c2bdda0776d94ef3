"""Turning paths and configured sources into batches for the ingestor."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.feeds import FEEDS, feed_for_filename
from engine.ingest import BatchReport, Ingestor, feed_rank
from integrations.base import Batch, FeedFormatError
from integrations.files import feed_files, move_done, read_file


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


# Parallel loads gain little beyond a few feeds at once, and each holds a connection.
DEFAULT_JOBS = min(4, os.cpu_count() or 1)

# Feeds whose rows others look up at ingest (rows naming an unknown person are held), so
# they go in first, before files of other feeds are stored side by side.
LOOKED_UP = ("units", "people")


def ingest_files(
    ingestor: Ingestor,
    paths: Sequence[Path],
    *,
    feed: str | None = None,
    move: bool = False,
    jobs: int = 1,
) -> Iterator[BatchReport]:
    """Ingest files one transaction each; a file that fails whole is reported, not raised.
    Reports come in the order of `expand_paths`.

    With `jobs` > 1 on PostgreSQL, files of different feeds are stored side by side, up to
    `jobs` at once, each in its own transaction and connection. Each feed's files still go
    one after another in order (a later file's rows win), and units and people go before
    the rest, as rows of other feeds are held when they name a person not yet known. An
    error other than a file that can't be read as its feed stops every lane before its next
    file; the files stored by then are reported, and the error is raised. SQLite takes one
    writer at a time, so there files go one by one whatever `jobs` says.
    """
    files = expand_paths(paths, feed)
    if jobs < 2 or ingestor.engine.dialect.name != "postgresql":
        yield from _in_order(ingestor, files, feed, move)
        return
    named = [(path, feed or feed_for_filename(path.name)) for path in files]
    yield from _in_order(ingestor, [p for p, name in named if name in LOOKED_UP], feed, move)
    rest: list[Path] = []  # the other files, in order; a lane holds its files' places here
    lanes: dict[str | None, list[int]] = {}
    for path, name in named:
        if name not in LOOKED_UP:
            lanes.setdefault(name, []).append(len(rest))
            rest.append(path)
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # gone: its lane reports that


def _in_order(
    ingestor: Ingestor, files: Sequence[Path], feed: str | None, move: bool
) -> Iterator[BatchReport]:
    for path in files:
        try:
            batch = file_batch(path, feed, move=move)
        except FeedFormatError as error:
            ingestor.record_unreadable(
                str(path), feed or feed_for_filename(path.name), error.message
            )
            yield BatchReport(path=str(path), feed=feed, outcome="failed", message=error.message)
            continue
        try:
            yield ingestor.ingest(batch, feed=feed)
        except FeedFormatError as error:
            yield BatchReport(
                path=str(path), feed=feed or batch.feed, outcome="failed", message=error.message
            )
