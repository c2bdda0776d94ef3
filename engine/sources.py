"""Turning paths and configured sources into batches for the ingestor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def ingest_files(
    ingestor: Ingestor, paths: Sequence[Path], *, feed: str | None = None, move: bool = False
) -> Iterator[BatchReport]:
    """Ingest files one transaction each; a file that fails whole is reported, not raised."""
    for path in expand_paths(paths, feed):
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
