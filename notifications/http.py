"""The one way notifications go out over HTTP: a hard timeout, bounded retries, no secrets told.

Every HTTP call of a channel (Graph's sendMail, the Teams Workflows webhook) goes through
`post_json`. The rules, so that each channel classifies failures the same way:

- 2xx is success.
- 429 and 503 are retried after what `Retry-After` asks (seconds or an HTTP date), at least
  the backoff, when that fits within `max_wait`; when the far end asks for longer, the error
  is raised at once with `retry_after` set, so the dispatcher defers the message instead of
  this process sleeping.
- Other 5xx, timeouts and connection failures are retried with exponential backoff
  (`backoff * 2**n`), `retries` more times, then raised as transient.
- Other 4xx (and 3xx: a webhook or endpoint that moved is a setting to fix) fail at once as
  permanent: asking again with the same request can't mend a wrong URL, token or body.
- A TLS certificate failure is permanent: it is a setting (or a certificate) to fix.

Every message starts with `where` (the channel and the host, never the full URL) and has the
`secrets` blanked out, in every spelling a URL library might give them (as written, and
percent-encoded or decoded), together with the URL's query string and any password in it.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import requests

from notifications.base import TransportError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_WAIT = 10.0
MAX_BODY_BYTES = 1024 * 1024  # an answer to a send is small; a bigger one is not read whole
_SNIPPET = 200  # how much of an error answer a message quotes
_READ_SIZE = 64 * 1024


class HttpStatusError(TransportError):
    """A TransportError for an answer with an HTTP status (`status`), e.g. Graph's 401."""

    def __init__(self, message: str, *, status: int, permanent: bool, retry_after=None):
        super().__init__(message, permanent=permanent, retry_after=retry_after)
        self.status = status


class _ScrubLibraryLogs(logging.Filter):
    """Blanks secrets out of what the HTTP libraries log: urllib3 logs each request's path
    and query at DEBUG, and a webhook's signature is in its query."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            clean = scrub(text, self.secrets)
            if clean != text:
                record.msg, record.args = clean, None
        return True


_library_logs = _ScrubLibraryLogs()
_protected: dict[str, None] = {}  # insertion-ordered: the oldest goes first
_KEPT_SECRETS = 64
# A logger's filter sees only the records made by that logger (not its children's), so each
# logger that can see a URL, a token or a request is named.
for _name in (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "msal.application",
    "msal.authority",
    "msal.token_cache",
    "msal.oauth2cli.oauth2",
    "msal.oauth2cli.oidc",
):
    logging.getLogger(_name).addFilter(_library_logs)


def protect_in_logs(secrets: Iterable[str]) -> None:
    """Keep `secrets` out of the HTTP libraries' log records from now on (the most recent
    _KEPT_SECRETS of them: tokens come and go, a long-running process must not collect them)."""
    new = [s for s in secrets if s and s not in _protected]
    if not new:
        return
    for secret in new:
        _protected[secret] = None
    while len(_protected) > _KEPT_SECRETS:
        del _protected[next(iter(_protected))]
    _library_logs.secrets = sorted(_protected, key=len, reverse=True)


class _Deadline(Exception):
    """An attempt ran past its time limit while the answer was still arriving."""


def post_json(
    session: requests.Session,
    url: str,
    body: Mapping[str, Any],
    *,
    where: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    max_wait: float = DEFAULT_MAX_WAIT,
    secrets: Iterable[str] = (),
) -> int:
    """POST `body` as JSON to `url`; return the 2xx status, or raise TransportError.

    Each attempt is limited to `timeout` seconds in all (connecting, waiting, reading the
    answer). See the module docstring for what is retried and what is permanent.
    """
    hidden = secret_spellings([*secrets, *url_secrets(url)])
    protect_in_logs(hidden)
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    attempt = 0
    while True:
        asked: float | None = None
        status_seen: int | None = None
        try:
            status, answer_headers, answer = _attempt(session, url, data, all_headers, timeout)
        except requests.exceptions.SSLError as error:
            raise TransportError(
                scrub(f"{where}: TLS failed: {error}", hidden), permanent=True
            ) from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            _Deadline,
        ) as error:
            problem = _describe(error, timeout)
        except requests.RequestException as error:  # a malformed URL and the like
            raise TransportError(scrub(f"{where}: {error}", hidden), permanent=True) from None
        else:
            if 200 <= status < 300:
                return status
            problem = f"HTTP {status}{_snippet(answer)}"
            if status != 429 and status < 500:
                raise HttpStatusError(
                    scrub(f"{where}: {problem}", hidden), status=status, permanent=True
                )
            status_seen = status
            if status in (429, 503):
                asked = retry_after_seconds(answer_headers.get("Retry-After"))
        wait = backoff * 2**attempt
        if asked is not None:
            wait = max(wait, asked)
        if attempt >= retries or wait > max_wait:
            tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
            message = scrub(f"{where}: {problem} (gave up after {tries})", hidden)
            if status_seen is None:
                raise TransportError(message, permanent=False, retry_after=asked)
            raise HttpStatusError(message, status=status_seen, permanent=False, retry_after=asked)
        log.info("%s", scrub(f"{where}: {problem}; trying again in {wait:g}s", hidden))
        time.sleep(wait)
        attempt += 1


def _attempt(
    session: requests.Session,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> tuple[int, Mapping[str, str], bytes]:
    deadline = time.monotonic() + timeout
    # No redirects: a webhook that answers 3xx is misconfigured, and following one would send
    # the body (and any Authorization header) somewhere not configured.
    with session.post(
        url, data=data, headers=headers, timeout=timeout, stream=True, allow_redirects=False
    ) as response:
        raw = response.raw
        read1 = getattr(raw, "read1", None)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BODY_BYTES:
            # read1 returns after one socket read, so a server trickling bytes can't stretch
            # an attempt past its deadline.
            chunk = (
                read1(_READ_SIZE, decode_content=True)
                if read1
                else raw.read(_READ_SIZE, decode_content=True)
            )
            if not chunk:
                break
            size += len(chunk)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _Deadline(f"answer not complete within {timeout:g}s")
        return response.status_code, response.headers, b"".join(chunks)


def _describe(error: Exception, timeout: float) -> str:
    if isinstance(error, _Deadline):
        return f"timed out: {error}"
    if isinstance(error, requests.Timeout):
        return f"timed out after {timeout:g}s"
    return f"connection failed ({error})"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (a number of seconds or an HTTP date)."""
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
    text = " ".join(body[:_SNIPPET].decode("utf-8", "replace").split())
    return f": {text}" if text else ""


def url_secrets(url: str) -> list[str]:
    """The parts of `url` that must not be told: its query (a webhook's signature lives
    there), each query value, and a password."""
    parts = urlsplit(url)
    found = [parts.query] if parts.query else []
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= 4]
    if parts.password:
        found.append(parts.password)
    return found


def secret_spellings(secrets: Iterable[str]) -> list[str]:
    """Each secret as written, percent-decoded and percent-encoded, longest first (so that a
    secret containing another is blanked whole)."""
    spelled: set[str] = set()
    for secret in secrets:
        if secret:
            spelled.update({secret, unquote(secret), quote(secret, safe=""), quote(secret)})
    return sorted((s for s in spelled if s), key=len, reverse=True)


def scrub(message: str, secrets: Iterable[str]) -> str:
    """`message` with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def host_of(url: str) -> str:
    """scheme://host[:port] of `url`: what a message may say about where it went."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that isn't a number: say nothing more than the host
        port = ""
    return f"{parts.scheme}://{host}{port}"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (where plain http or an unencrypted login is harmless)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
