"""PostgreSQL: files of different feeds stored side by side, each in its own transaction.

Each feed's files still go one after another in order (a later file's rows win). An error
other than a file that can't be read as its feed stops every lane before its next file;
the files stored by then are reported, in order, and the error is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.ingest.batches import BatchReport


def store_side_by_side(
    files: Sequence[Path],
    store: Callable[[Path], BatchReport],
    feed_of: Callable[[Path], str | None],
    jobs: int,
) -> Iterator[BatchReport]:
    """Store `files` up to `jobs` at once, one lane per feed; reports in the files' order."""
    lanes: dict[str | None, list[int]] = {}
    for n, path in enumerate(files):
        lanes.setdefault(feed_of(path), []).append(n)
    # The largest lanes first, so that the small ones fill in beside them at the end.
    ordered = sorted(lanes.values(), key=lambda lane: -sum(_size(files[n]) for n in lane))
    reports: dict[int, BatchReport] = {}
    stop = threading.Event()  # set on an error: every lane stops before its next file

    def run(lane: list[int]) -> None:
        for n in lane:
            if stop.is_set():
                return
            try:
                reports[n] = store(files[n])
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
