"""Pulling a feed from a force's HTTP endpoint, page by page, from a watermark.

The endpoint protocol (ours: a force puts it in front of its system)::

    GET <url>?since=<watermark>&limit=<page_size>[&cursor=<cursor>]
    Authorization: Bearer <token>                   (when a token is configured)
    Accept: application/json

    200 OK
    {"items": [{...feed fields..., "updated_at": "2025-06-01T10:00:00Z"}, ...],
     "next_cursor": "opaque text" | null}

- `since` is left out on the first pull, when nothing has been stored yet. Afterwards it is
  the highest watermark (`updated_at` unless configured otherwise) of the items stored so
  far, and the endpoint answers only items whose watermark is later than it.
- Items come in ascending watermark order, so the watermark saved after each page never
  passes an item that hasn't been stored. Watermarks are compared as text: the endpoint
  must write them in one ISO 8601 form (e.g. always UTC with `Z`). Items sharing one
  watermark value should not be split across pulls, or those after the split are missed.
- `next_cursor` is opaque: the client sends it back with the same `since` and `limit`, and
  stops when it is null, empty or absent, or when a page has no items (an endpoint that
  hands out a new cursor for every empty page would otherwise be asked forever).
- A pull is bounded: after `max_pages` pages or `max_seconds` seconds it stops with an error;
  what was read is stored and the next pull goes on from its watermark.
- A watermark must be a time (`engine.ingest.feeds.check_watermark`): an item whose watermark is
  `Infinity`, a number or not a time is a rejected row and never moves the watermark.
- 5xx answers, 429, timeouts and connection errors are retried with exponential backoff;
  `Retry-After` (seconds or an HTTP date) on 429 and 503 is honoured up to a cap. Other
  4xx answers fail at once: a wrong URL or token does not mend by asking again.

Each page is one `Batch` named `<url> page N`; a page with no items after the first is not
one (so a pull that finds nothing new records one ingest run, not one per empty page). The
token is sent only as a header and is scrubbed from every message in every form it may take
there (raw, escaped as Python or JSON writes it, URL-encoded); a token holding a control
character is refused before anything is sent.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

import requests

from engine.ingest.feeds import InvalidValue, check_watermark
from integrations.base import Batch, SourceError, UnreadableRow, rows_from_records

# A page far larger than this is a misconfigured endpoint, not a feed; refuse it rather than
# exhaust memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
_READ_SIZE = 64 * 1024
_SNIPPET = 200  # how much of an error body a message quotes
log = logging.getLogger(__name__)
DEFAULT_MAX_PAGES = 10_000
DEFAULT_MAX_SECONDS = 900.0
# Python's int() refuses more digits than this; such a number is no feed value anyway, and
# reading it as infinity lets the row validators reject that one row, not the whole page.
_MAX_INT_DIGITS = 4000


class _Deadline(Exception):
    """An attempt ran past its overall time limit while the body was still arriving."""


class _TooLarge(Exception):
    """An answer bigger than MAX_BODY_BYTES."""


def fetch(
    session: requests.Session,
    url: str,
    *,
    where: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    verify: bool | str = True,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
    max_wait: float = 30.0,
    secrets: Sequence[str] = (),
) -> bytes:
    """GET `url` and return the body of a 2xx answer; every HTTP call in this package goes here.

    Each attempt is limited to `timeout` seconds (connecting, each wait for data, and the
    whole body). Connection errors, timeouts, 5xx and 429 are tried again up to `retries`
    more times, waiting `backoff * 2**n` seconds, or what `Retry-After` asks on 429/503,
    never more than `max_wait`. `where` starts every message; `secrets` are blanked out of
    them.

    :raise SourceError: on any other 4xx or 3xx, a TLS failure, or when retries run out.
    """
    attempt = 0
    while True:
        try:
            status, answer_headers, body = _attempt(
                session, url, params=params, headers=headers, verify=verify, timeout=timeout
            )
        except requests.exceptions.SSLError as error:
            # A certificate problem will be the same on the next try.
            raise SourceError(_scrub(f"{where}: TLS failed: {error}", secrets)) from error
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            _Deadline,
        ) as error:
            problem = _describe(error, timeout)
            wait = backoff * 2**attempt
        except (requests.RequestException, _TooLarge) as error:  # a malformed URL and the like
            raise SourceError(_scrub(f"{where}: {error}", secrets)) from error
        else:
            if 200 <= status < 300:
                return body
            problem = f"HTTP {status}{_snippet(body)}"
            if status != 429 and status < 500:
                raise SourceError(_scrub(f"{where}: {problem}", secrets))
            wait = backoff * 2**attempt
            if status in (429, 503):
                asked = _retry_after(answer_headers.get("Retry-After"))
                if asked is not None:
                    wait = max(wait, asked)
        if attempt >= retries:
            tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
            raise SourceError(_scrub(f"{where}: {problem} (gave up after {tries})", secrets))
        time.sleep(min(wait, max_wait))
        attempt += 1


def _attempt(
    session: requests.Session,
    url: str,
    *,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    verify: bool | str,
    timeout: float,
) -> tuple[int, Mapping[str, str], bytes]:
    deadline = time.monotonic() + timeout
    # `verify` goes with each request, not on the session: requests lets REQUESTS_CA_BUNDLE
    # override a session's `verify` (even False), but not a per-request path or False.
    with session.get(
        url, params=params, headers=headers, verify=verify, timeout=timeout, stream=True
    ) as response:
        raw = response.raw
        # read1 (urllib3 >= 2.3) returns after one socket read, so a server trickling bytes
        # can't stretch an attempt past the deadline; plain read waits for a full buffer.
        read1 = getattr(raw, "read1", None)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = (
                read1(_READ_SIZE, decode_content=True)
                if read1
                else raw.read(_READ_SIZE, decode_content=True)
            )
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _TooLarge(f"answer larger than {MAX_BODY_BYTES} bytes")
            if time.monotonic() > deadline:
                raise _Deadline(f"answer not complete within {timeout:g}s")
            chunks.append(chunk)
        return response.status_code, response.headers, b"".join(chunks)


def _describe(error: Exception, timeout: float) -> str:
    if isinstance(error, _Deadline):
        return f"timed out: {error}"
    if isinstance(error, requests.Timeout):
        return f"timed out after {timeout:g}s ({error})"
    return f"connection failed ({error})"


def _retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return seconds if seconds > 0 else 0.0  # also maps NaN to 0


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", "replace").strip()
    return f": {text}" if text else ""


def secret_forms(secret: str) -> list[str]:
    """Every form `secret` may take in a message: as given, trimmed, escaped as Python's
    repr or JSON writes it (requests quotes a bad header value with repr), URL-encoded, and
    decoded (a password in a URL is written encoded).
    Longest first, so a longer form is blanked whole before a shorter one inside it."""
    forms = {secret, secret.strip(), repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    forms |= {quote(secret, safe=""), quote_plus(secret), quote(secret), unquote(secret)}
    return sorted((f for f in forms if f), key=len, reverse=True)


def control_character_problem(secret: str) -> str | None:
    """Why `secret` can't go into a header or URL: a control character (often a trailing
    newline from the file or the shell it came from), described without the secret."""
    for index, char in enumerate(secret):
        if ord(char) < 32 or ord(char) == 127:
            where = "at the end" if index >= len(secret.rstrip()) else f"at position {index + 1}"
            return f"holds a control character ({char!r}) {where}"
    return None


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        for form in secret_forms(secret) if secret else ():
            message = message.replace(form, "***")
    return message


def display_url(url: str) -> str:
    """`url` without any user:password part, fit for messages and batch names."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class HttpSource:
    """One feed pulled from one endpoint, from a remembered watermark (see the module doc).

    `columns` is the feed's column tuple. `token` is sent as a bearer token. `verify` is
    requests' `verify`: False, or a CA bundle path, is used whatever REQUESTS_CA_BUNDLE says;
    True means requests' default trust, which that variable may set. `session.verify` is
    ignored in favour of `verify`.
    """

    def __init__(
        self,
        name: str,
        url: str,
        feed: str,
        columns: Sequence[str],
        *,
        token: str | None = None,
        since: str | None = None,
        watermark_field: str = "updated_at",
        page_size: int = 1000,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        session: requests.Session | None = None,
        verify: bool | str = True,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ):
        if token is not None and control_character_problem(token):
            raise ValueError(f"HTTP source {name}: the token {control_character_problem(token)}")
        if max_pages < 1 or not max_seconds > 0:
            raise ValueError(f"HTTP source {name}: max_pages and max_seconds must be positive")
        if page_size < 1:
            raise ValueError(f"HTTP source {name}: page_size must be at least 1, not {page_size}")
        if retries < 0:
            raise ValueError(f"HTTP source {name}: retries can't be negative ({retries})")
        if timeout <= 0:
            raise ValueError(f"HTTP source {name}: timeout must be positive ({timeout})")
        self.name = name
        self.url = url
        self.feed = feed
        self.columns = tuple(columns)
        self.token = token
        self.since = self._usable_since(since)
        self.watermark_field = watermark_field
        self.page_size = page_size
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.session = session
        self.verify = verify
        self.max_pages = max_pages
        self.max_seconds = max_seconds
        self.display_url = display_url(url)
        self._secrets = tuple(s for s in (token, urlsplit(url).password) if s)

    def _usable_since(self, since: str | None) -> str | None:
        # A watermark stored before watermarks were checked may be `inf`: sending it back
        # would ask for nothing ever again. Starting over is safe, as ingest is idempotent.
        if not since:
            return None
        try:
            return check_watermark(since)
        except InvalidValue:
            log.warning(
                "stored watermark is not a time; pulling from the start",
                extra={"source": self.name},
            )
            return None

    def batches(self) -> Iterator[Batch]:
        """One batch per page; the next page is asked for only when the caller wants it.

        :raise SourceError: when a page can't be had (after retries) or isn't the JSON the
            protocol promises; batches already yielded stay good.
        """
        session = self.session or requests.Session()
        try:
            yield from self._pages(session)
        finally:
            if self.session is None:
                session.close()

    def _pages(self, session: requests.Session) -> Iterator[Batch]:
        headers = {"Accept": "application/json", "User-Agent": "trauma-tracker"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        watermark = self.since
        cursor: str | None = None
        seen_cursors: set[str] = set()
        records = 0
        page = 0
        started = time.monotonic()
        while True:
            page += 1
            where = f"GET {self.display_url} page {page}"
            if page > self.max_pages or time.monotonic() - started > self.max_seconds:
                bound = (
                    f"{self.max_pages} pages (max_pages)"
                    if page > self.max_pages
                    else f"{self.max_seconds:g} seconds (max_seconds)"
                )
                raise SourceError(
                    f"{where}: the pull stopped after {bound}; what was read is stored, and "
                    "the next pull goes on from there"
                )
            params: dict[str, Any] = {}
            if self.since:
                params["since"] = self.since
            params["limit"] = self.page_size
            if cursor is not None:
                params["cursor"] = cursor
            body = fetch(
                session,
                self.url,
                where=where,
                params=params,
                headers=headers,
                verify=self.verify,
                timeout=self.timeout,
                retries=self.retries,
                backoff=self.backoff,
                max_wait=self.max_wait,
                secrets=self._secrets,
            )
            items, next_cursor = self._parse(body, where)
            if not items and page > 1:
                return  # the end, whatever cursor came with it
            # Numbered across the whole pull so a quarantine message points at one item.
            rows = list(rows_from_records(items, self.columns, first=records + 1))
            if SURROGATE_ESCAPE.search(body):
                _refuse_surrogates(items, rows)
            for index, item in enumerate(items):
                value = item.get(self.watermark_field) if isinstance(item, dict) else None
                if value is None:
                    continue
                try:
                    value = check_watermark(value)
                except InvalidValue as error:
                    reason = f"{self.watermark_field}: not a watermark time ({error})"
                    rows[index] = (rows[index][0], UnreadableRow(reason, _raw(item)))
                    continue
                if watermark is None or value > watermark:
                    watermark = value
            yield Batch(
                name=f"{self.display_url} page {page}",
                feed=self.feed,
                columns=self.columns,
                rows=rows,
                content_hash=hashlib.sha256(body).hexdigest(),
                source_key=self.name,
                watermark=watermark,
            )
            records += len(items)
            if next_cursor is None or not items:
                return
            if next_cursor in seen_cursors:
                # A server handing back an old cursor would otherwise keep us here forever.
                raise SourceError(
                    _scrub(f"{where}: next_cursor {next_cursor!r} was already used", self._secrets)
                )
            seen_cursors.add(next_cursor)
            cursor = next_cursor

    def _parse(self, body: bytes, where: str) -> tuple[list[Any], str | None]:
        try:
            document = json.loads(body, parse_int=_json_int)
        except (ValueError, RecursionError) as error:  # RecursionError: nested 10,000 deep
            raise SourceError(
                _scrub(f"{where}: answer is not JSON ({error}){_snippet(body)}", self._secrets)
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise SourceError(
                _scrub(
                    f'{where}: answer is not {{"items": [...], "next_cursor": ...}}'
                    f"{_snippet(body)}",
                    self._secrets,
                )
            )
        cursor = document.get("next_cursor")
        if isinstance(cursor, bool) or not isinstance(cursor, str | int | None):
            raise SourceError(f"{where}: next_cursor is not text or null: {cursor!r}")
        return document["items"], (str(cursor) if cursor not in (None, "") else None)


# `"\ud800"` alone is valid JSON but no character: no database can store it.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_surrogates(items: list[Any], rows: list) -> None:
    """An item holding an unpaired surrogate becomes a rejected row (its raw text escaped),
    so the rest of the page is stored."""
    for index, item in enumerate(items):
        try:
            json.dumps(item, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            reason = "not valid text: an unpaired surrogate (\\ud800-\\udfff)"
            raw = json.dumps(item, default=str)[:10_000]  # \u escapes: storable
            rows[index] = (rows[index][0], UnreadableRow(reason, raw))


def _json_int(text: str) -> int | float:
    return int(text) if len(text) <= _MAX_INT_DIGITS else float("inf")


def _raw(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, default=str)[:10_000]
