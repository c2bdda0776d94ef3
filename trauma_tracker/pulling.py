"""Pulled sources (HTTP endpoints, SQL queries) built from settings and fed to the ingestor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from engine.ingest.batches import BatchReport, Ingestor, watermark_for
from engine.ingest.feeds import FEEDS
from integrations.base import FeedFormatError, SourceError
from integrations.http import HttpSource
from integrations.sql import SqlSource
from trauma_tracker.settings import HttpSourceSettings, SqlSourceSettings


def build_source(settings: HttpSourceSettings | SqlSourceSettings, since: str | None):
    if settings.feed not in FEEDS:
        raise SourceError(f"source {settings.name}: unknown feed {settings.feed!r}")
    columns = FEEDS[settings.feed].columns
    if isinstance(settings, HttpSourceSettings):
        return HttpSource(
            settings.name,
            settings.url,
            settings.feed,
            columns,
            token=settings.token,
            since=since,
            watermark_field=settings.watermark_field,
            page_size=settings.page_size,
            timeout=settings.timeout,
            retries=settings.retries,
            verify=settings.verify,
            max_pages=settings.max_pages,
            max_seconds=settings.max_seconds,
        )
    return SqlSource(
        settings.name,
        settings.url,
        settings.query,
        settings.feed,
        columns,
        watermark_column=settings.watermark_column,
        since=since,
        chunk_size=settings.chunk_size,
    )


def pull_sources(
    ingestor: Ingestor, sources: Sequence[HttpSourceSettings | SqlSourceSettings]
) -> Iterator[BatchReport]:
    """Pull each source from its stored watermark; each page or chunk is one transaction.

    :raise SourceError: a source could not be read; what was stored before it stays stored.
    """
    for settings in sources:
        since = watermark_for(ingestor.engine, settings.name)
        for batch in build_source(settings, since).batches():
            batch.source_key = settings.name
            try:
                yield ingestor.ingest(batch, feed=settings.feed)
            except FeedFormatError as error:
                yield BatchReport(
                    path=batch.name, feed=settings.feed, outcome="failed", message=error.message
                )
