"""The HTTP source against a real paged endpoint on loopback."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import certifi
import pytest

from engine.ingest.feeds import FEEDS
from integrations.base import SourceError
from integrations.http import HttpSource

COLUMNS = FEEDS["cc_incidents"].columns
TOKEN = "s3cret-token-value"

Fault = Callable[[BaseHTTPRequestHandler], bool]  # True when it answered the request itself


@dataclass
class Seen:
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class Endpoint:
    """The force's side: items, the requests it saw, and faults to answer with."""

    url: str = ""
    items: list[dict] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)  # one per request, in order
    always: Fault | None = None  # for every request once `faults` is used up

    def page(self, query: dict[str, str]) -> bytes:
        since = query.get("since")
        matching = sorted(
            (i for i in self.items if since is None or i["updated_at"] > since),
            key=lambda i: i["updated_at"],
        )
        start = int(query.get("cursor", 0))
        end = start + int(query["limit"])
        next_cursor = str(end) if end < len(matching) else None
        return json.dumps({"items": matching[start:end], "next_cursor": next_cursor}).encode()


def incident(n: int, updated_at: str) -> dict:
    return {
        "incident_urn": f"INC-{n:04d}",
        "created_at": "2025-06-01T09:00:00Z",
        "closing_code": "SUDDEN_DEATH",
        "updated_at": updated_at,
    }


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Fault:
    def fault(handler: BaseHTTPRequestHandler) -> bool:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return True

    return fault


def echo_authorization(status: int) -> Fault:
    """An error page quoting the request's Authorization header, as careless servers do."""

    def fault(handler: BaseHTTPRequestHandler) -> bool:
        body = f"no such feed (you sent {handler.headers.get('Authorization')})".encode()
        return answer(status, body)(handler)

    return fault


def pause(seconds: float) -> Fault:
    def fault(handler: BaseHTTPRequestHandler) -> bool:
        time.sleep(seconds)
        return False  # then answer normally, to a client that has given up

    return fault


def trickle(seconds: float) -> Fault:
    """Headers at once, then the body a byte at a time: each read is quick, the whole is not."""

    def fault(handler: BaseHTTPRequestHandler) -> bool:
        body = b'{"items": [], "next_cursor": null}'
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.flush()
        for byte in body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(seconds / len(body))
        return True

    return fault


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        endpoint: Endpoint = self.server.endpoint  # type: ignore[attr-defined]
        query = dict(parse_qsl(urlsplit(self.path).query))
        endpoint.seen.append(Seen(query, dict(self.headers), time.monotonic()))
        fault = endpoint.faults.pop(0) if endpoint.faults else endpoint.always
        if fault is not None and fault(self):
            return
        answer(200, endpoint.page(query), {"Content-Type": "application/json"})(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that timed out leaves a broken pipe behind; that is the test working.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _serve(context: ssl.SSLContext | None = None) -> Iterator[Endpoint]:
    endpoint = Endpoint()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.endpoint = endpoint  # type: ignore[attr-defined]
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    endpoint.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/v1/cc_incidents"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    yield from _serve()


def source(endpoint: Endpoint, **options) -> HttpSource:
    options = {"backoff": 0.001, "max_wait": 0.05, "timeout": 2.0, **options}
    return HttpSource("cad-http", endpoint.url, "cc_incidents", COLUMNS, **options)


def test_pages_follow_the_cursor(endpoint):
    endpoint.items = [incident(n, f"2025-06-01T10:0{n}:00Z") for n in range(1, 8)]

    batches = list(source(endpoint, page_size=3).batches())

    assert [b.name for b in batches] == [f"{endpoint.url} page {n}" for n in (1, 2, 3)]
    assert [[number for number, _ in b.rows] for b in batches] == [[1, 2, 3], [4, 5, 6], [7]]
    assert [s.query for s in endpoint.seen] == [
        {"limit": "3"},
        {"limit": "3", "cursor": "3"},
        {"limit": "3", "cursor": "6"},
    ]
    first = batches[0]
    assert (first.feed, first.columns, first.source_key) == ("cc_incidents", COLUMNS, "cad-http")
    assert first.rows[0] == (
        1,
        ["INC-0001", "2025-06-01T09:00:00Z", None, None, "SUDDEN_DEATH", None, None, None],
    )
    assert [b.watermark for b in batches] == [
        "2025-06-01T10:03:00Z",
        "2025-06-01T10:06:00Z",
        "2025-06-01T10:07:00Z",
    ]
    assert len({b.content_hash for b in batches}) == 3
    assert all(len(b.content_hash or "") == 64 for b in batches)


def test_next_pull_sends_the_watermark_and_gets_only_newer_items(endpoint):
    endpoint.items = [incident(n, f"2025-06-01T10:0{n}:00Z") for n in range(1, 4)]
    watermark = list(source(endpoint).batches())[-1].watermark
    endpoint.items += [incident(n, f"2025-06-02T08:0{n}:00Z") for n in (4, 5)]
    endpoint.seen.clear()

    batches = list(source(endpoint, since=watermark).batches())

    assert endpoint.seen[0].query["since"] == "2025-06-01T10:03:00Z"
    assert [row[0] for _, row in batches[0].rows] == ["INC-0004", "INC-0005"]
    assert batches[-1].watermark == "2025-06-02T08:05:00Z"


def test_items_without_a_watermark_leave_it_alone(endpoint):
    page = {"items": [incident(1, "2025-06-01T10:01:00Z"), {"incident_urn": "B"}]}
    endpoint.always = answer(200, json.dumps(page).encode())

    (batch,) = source(endpoint, since="2025-06-01T10:00:00Z").batches()

    assert len(batch.rows) == 2
    assert batch.watermark == "2025-06-01T10:01:00Z"


def test_nothing_new_keeps_the_watermark(endpoint):
    endpoint.items = [incident(1, "2025-06-01T10:01:00Z")]

    batches = list(source(endpoint, since="2025-06-03T00:00:00Z").batches())

    assert [b.rows for b in batches] == [[]]
    assert batches[0].watermark == "2025-06-03T00:00:00Z"


def test_a_record_that_is_not_an_object_is_an_unreadable_row(endpoint):
    endpoint.always = answer(200, b'{"items": [{"incident_urn": "A"}, 7], "next_cursor": null}')

    (batch,) = source(endpoint).batches()

    assert batch.rows[1][0] == 2
    assert "not a JSON object" in batch.rows[1][1].reason


def test_token_is_sent_as_a_bearer_token(endpoint):
    list(source(endpoint, token=TOKEN).batches())
    list(source(endpoint).batches())

    assert endpoint.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in endpoint.seen[1].headers


def test_a_server_error_is_retried(endpoint):
    endpoint.items = [incident(1, "2025-06-01T10:01:00Z")]
    endpoint.faults = [answer(500, b"database busy")]

    (batch,) = source(endpoint).batches()

    assert len(endpoint.seen) == 2
    assert endpoint.seen[0].query == endpoint.seen[1].query
    assert [row[0] for _, row in batch.rows] == ["INC-0001"]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(endpoint, status):
    endpoint.faults = [answer(status, headers={"Retry-After": "0.3"})]

    list(source(endpoint, max_wait=5.0).batches())

    assert len(endpoint.seen) == 2
    assert endpoint.seen[1].at - endpoint.seen[0].at >= 0.28  # backoff alone is 0.001s


def test_retry_after_is_capped(endpoint):
    endpoint.faults = [answer(429, headers={"Retry-After": "3600"})]

    list(source(endpoint, max_wait=0.05).batches())

    assert endpoint.seen[1].at - endpoint.seen[0].at < 2


def test_a_slow_server_times_out_and_fails_naming_the_url(endpoint):
    endpoint.always = pause(0.6)

    with pytest.raises(SourceError) as raised:
        list(source(endpoint, token=TOKEN, timeout=0.15, retries=2).batches())

    message = str(raised.value)
    assert len(endpoint.seen) == 3
    assert endpoint.url in message
    assert "timed out" in message
    assert "gave up after 3 attempts" in message
    assert TOKEN not in message


def test_a_trickling_answer_is_cut_off_at_the_timeout(endpoint):
    endpoint.always = trickle(2.0)
    started = time.monotonic()

    with pytest.raises(SourceError, match="not complete within 0.3s"):
        list(source(endpoint, timeout=0.3, retries=0).batches())

    assert time.monotonic() - started < 1.5


def test_not_found_fails_at_once_without_the_token(endpoint):
    endpoint.always = echo_authorization(404)

    with pytest.raises(SourceError) as raised:
        list(source(endpoint, token=TOKEN).batches())

    message = str(raised.value)
    assert len(endpoint.seen) == 1
    assert f"GET {endpoint.url} page 1: HTTP 404" in message
    assert TOKEN not in message
    assert "Bearer ***" in message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>Service portal</html>", "not JSON"),
        (b'{"data": []}', '"items"'),
        (b'{"items": [], "next_cursor": {"page": 2}}', "next_cursor"),
    ],
)
def test_an_answer_of_the_wrong_shape_fails(endpoint, body, problem):
    endpoint.always = answer(200, body)

    with pytest.raises(SourceError, match=problem) as raised:
        list(source(endpoint, token=TOKEN).batches())

    assert endpoint.url in str(raised.value)
    assert len(endpoint.seen) == 1


def test_a_repeated_cursor_stops_the_pull(endpoint):
    page = {"items": [incident(1, "2025-06-01T10:01:00Z")], "next_cursor": "same"}
    endpoint.always = answer(200, json.dumps(page).encode())

    with pytest.raises(SourceError, match="already used"):
        list(source(endpoint).batches())

    assert len(endpoint.seen) == 2


def test_an_unreachable_endpoint_fails_after_retries():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/cc_incidents"
    pull = HttpSource("cad", url, "cc_incidents", COLUMNS, token=TOKEN, retries=1, backoff=0.001)

    with pytest.raises(SourceError) as raised:
        list(pull.batches())

    message = str(raised.value)
    assert "connection failed" in message
    assert url in message
    assert "gave up after 2 attempts" in message
    assert TOKEN not in message


def test_credentials_in_the_url_stay_out_of_names(endpoint):
    url = endpoint.url.replace("http://", "http://feeduser:url-password@")

    (batch,) = HttpSource("cad", url, "cc_incidents", COLUMNS).batches()

    assert batch.name == f"{endpoint.url} page 1"


@pytest.fixture
def certificate(tmp_path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def tls_endpoint(certificate) -> Iterator[Endpoint]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from _serve(context)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_is_used_as_passed_whatever_the_environment_says(
    tls_endpoint, certificate, monkeypatch
):
    # The system bundle doesn't trust our certificate; requests would let this variable
    # replace a session's `verify`.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    tls_endpoint.items = [incident(1, "2025-06-01T10:01:00Z")]

    (trusted,) = source(tls_endpoint, verify=certificate[0]).batches()
    (unchecked,) = source(tls_endpoint, verify=False).batches()
    with pytest.raises(SourceError, match="TLS failed"):
        list(source(tls_endpoint, verify=True, retries=3).batches())

    assert len(trusted.rows) == len(unchecked.rows) == 1
    assert len(tls_endpoint.seen) == 2  # the refused certificate was not tried again


# --- hostile and careless endpoints (issue 15 sections 2 and 4) ------------------------------


def new_cursor_every_time(items_per_page: int = 0) -> Fault:
    """An endpoint that never says it is done: a fresh cursor on every page."""

    def fault(handler: BaseHTTPRequestHandler) -> bool:
        n = int(dict(parse_qsl(urlsplit(handler.path).query)).get("cursor", 0))
        items = [incident(n * 10 + i, f"2025-06-01T10:00:{i:02d}Z") for i in range(items_per_page)]
        body = json.dumps({"items": items, "next_cursor": str(n + 1)}).encode()
        return answer(200, body)(handler)

    return fault


def test_empty_pages_with_ever_new_cursors_end_the_pull_at_once(endpoint):
    endpoint.always = new_cursor_every_time(items_per_page=0)

    batches = list(source(endpoint).batches())

    assert len(endpoint.seen) == 1
    assert [b.rows for b in batches] == [[]]  # one run for the pull that found nothing


def test_an_empty_page_after_items_ends_the_pull_without_a_batch(endpoint):
    endpoint.faults = [new_cursor_every_time(items_per_page=2)]
    endpoint.always = new_cursor_every_time(items_per_page=0)

    batches = list(source(endpoint).batches())

    assert len(endpoint.seen) == 2
    assert [len(b.rows) for b in batches] == [2]


def test_a_pull_stops_after_max_pages(endpoint):
    endpoint.always = new_cursor_every_time(items_per_page=1)
    pull = source(endpoint, max_pages=5).batches()

    batches = [next(pull) for _ in range(5)]
    with pytest.raises(SourceError) as raised:
        next(pull)

    assert len(batches) == len(endpoint.seen) == 5
    assert str(raised.value) == (
        f"GET {endpoint.url} page 6: the pull stopped after 5 pages (max_pages); what was read "
        "is stored, and the next pull goes on from there"
    )


def test_a_pull_stops_after_max_seconds(endpoint):
    endpoint.always = new_cursor_every_time(items_per_page=1)
    started = time.monotonic()

    with pytest.raises(SourceError, match=r"stopped after 0.3 seconds \(max_seconds\)"):
        for _ in source(endpoint, max_seconds=0.3).batches():
            time.sleep(0.05)

    assert time.monotonic() - started < 1.5
    assert 2 <= len(endpoint.seen) <= 8


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("Infinity", "expected text, not a number"),
        ("1e999", "expected text, not a number"),
        ("NaN", "expected text, not a number"),
        ("12", "expected text, not an integer"),
        ('"Infinity"', "not an ISO 8601 datetime"),
        ('"9999-12-31T23:59:59-14:00"', "out of range"),
    ],
)
def test_a_watermark_that_is_not_a_time_rejects_its_item_and_never_moves(endpoint, written, reason):
    good = json.dumps(incident(1, "2025-06-01T10:01:00Z"))
    bad = json.dumps(incident(2, "X")).replace('"X"', written)
    endpoint.always = answer(200, f'{{"items": [{good}, {bad}], "next_cursor": null}}'.encode())

    (batch,) = source(endpoint, since="2025-06-01T10:00:00Z").batches()

    assert batch.watermark == "2025-06-01T10:01:00Z"
    assert batch.rows[0][1][0] == "INC-0001"
    number, unreadable = batch.rows[1]
    assert number == 2 and unreadable.reason.startswith("updated_at: not a watermark time (")
    assert reason in unreadable.reason
    assert "INC-0002" in unreadable.raw


def test_a_stored_watermark_that_is_not_a_time_is_not_sent_back(endpoint):
    endpoint.items = [incident(1, "2025-06-01T10:01:00Z")]

    (batch,) = source(endpoint, since="inf").batches()

    assert "since" not in endpoint.seen[0].query
    assert batch.watermark == "2025-06-01T10:01:00Z"


def test_a_body_nested_10000_deep_fails_the_page_with_a_message(endpoint):
    endpoint.always = answer(200, b'{"items": [' + b"[" * 10000 + b"]" * 10000 + b"]}")

    with pytest.raises(SourceError, match="page 1: answer is not JSON"):
        list(source(endpoint).batches())


def test_a_5000_digit_number_is_one_bad_value_not_a_bad_page(endpoint):
    item = json.dumps(incident(1, "2025-06-01T10:01:00Z")).replace('"SUDDEN_DEATH"', "9" * 5000)
    endpoint.always = answer(200, f'{{"items": [{item}], "next_cursor": null}}'.encode())

    (batch,) = source(endpoint).batches()

    assert batch.rows[0][1][COLUMNS.index("closing_code")] == float("inf")


@pytest.mark.parametrize("token", [TOKEN + "\n", TOKEN + "\r\n", TOKEN + "\r", "a\x00b"])
def test_a_token_with_a_control_character_is_refused_without_showing_it(endpoint, token):
    with pytest.raises(ValueError) as raised:
        source(endpoint, token=token)

    assert "the token holds a control character" in str(raised.value)
    assert token.strip() not in str(raised.value)
    assert endpoint.seen == []


def test_every_form_of_the_token_is_scrubbed_from_messages(endpoint):
    token = 'tok+en/va=l"ue\\x'

    def echo_every_form(handler: BaseHTTPRequestHandler) -> bool:
        body = f"{token} {quote(token, safe='')} {quote_plus(token)} {json.dumps(token)} {token!r}"
        return answer(403, body.encode())(handler)

    endpoint.always = echo_every_form

    with pytest.raises(SourceError) as raised:
        list(source(endpoint, token=token).batches())

    message = str(raised.value)
    assert "HTTP 403: *** *** *** \"***\" '***'" in message
    assert "tok" not in message and "ue" not in message.split("403")[1]


def test_a_password_in_the_url_is_scrubbed_encoded_and_decoded(endpoint):
    def echo_password(handler: BaseHTTPRequestHandler) -> bool:
        return answer(401, b"bad password p@ss/word or p%40ss%2Fword")(handler)

    endpoint.always = echo_password
    url = endpoint.url.replace("http://", "http://feeduser:p%40ss%2Fword@")

    with pytest.raises(SourceError) as raised:
        list(HttpSource("cad", url, "cc_incidents", COLUMNS, retries=0).batches())

    assert str(raised.value).endswith("HTTP 401: bad password *** or ***")


def test_an_item_with_an_unpaired_surrogate_is_one_rejected_row_not_a_lost_page(endpoint):
    good = json.dumps(incident(1, "2025-06-01T10:01:00Z"))
    bad = json.dumps(incident(2, "2025-06-01T10:02:00Z")).replace("SUDDEN_DEATH", "\\ud800")
    endpoint.always = answer(200, f'{{"items": [{good}, {bad}], "next_cursor": null}}'.encode())

    (batch,) = source(endpoint).batches()

    assert batch.rows[0][1][0] == "INC-0001"
    number, unreadable = batch.rows[1]
    assert number == 2 and "unpaired surrogate" in unreadable.reason
    unreadable.raw.encode()  # the raw text kept for the quarantine is storable
    assert "\\ud800" in unreadable.raw
