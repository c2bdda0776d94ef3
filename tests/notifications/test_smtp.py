"""Email by SMTP against aiosmtpd on loopback: plain, STARTTLS, SMTPS, AUTH, 4xx and 5xx."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest

from notifications.base import ChannelNotConfigured, TransportError
from notifications.smtp import SmtpTransport, message_id
from tests.notifications.conftest import Recorder, password_check
from tests.notifications.samples import item, notification

SENDER = "Trauma Tracker <tracker@force.example>"
PASSWORD = "s3cret/p@ss word"  # URL-encoded in the URL below
PASSWORD_IN_URL = "s3cret%2Fp%40ss%20word"


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def test_plain_smtp_sends_both_parts_with_a_stable_message_id(smtp_server):
    server = smtp_server()
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)

    transport.send(notification(key="tt-outbox-7"))

    (envelope,) = server.messages
    assert envelope.mail_from == "tracker@force.example"
    assert envelope.rcpt_tos == ["sergeant@force.example"]
    message = parsed(envelope)
    assert message["Message-ID"] == "<tt-outbox-7@force.example>"
    assert message["To"] == "Sgt Jo Bloggs <sergeant@force.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "A welfare conversation is suggested for Alex Morgan." in text
    assert "Open the alert to see why and record the conversation." in text
    assert "https://tracker.force.example/alerts/1" in text
    assert '<a href="https://tracker.force.example/alerts/1"' in html
    assert message["Subject"] == "Welfare conversation suggested: Alex Morgan"


def test_the_same_key_gives_the_same_message_id(smtp_server):
    server = smtp_server()
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)
    transport.send(notification(key="tt-outbox-9"))
    transport.send(notification(key="tt-outbox-9"))
    transport.send(notification(key="tt-outbox-10"))
    ids = [parsed(e)["Message-ID"] for e in server.messages]
    assert ids[0] == ids[1] != ids[2]
    # A key that isn't a plain dot-atom still gives one valid, stable id.
    odd = message_id("row 12 <x>@y", "force.example")
    assert odd == message_id("row 12 <x>@y", "force.example")
    assert odd.startswith("<k") and odd.endswith("@force.example>") and " " not in odd


def test_one_connection_serves_a_whole_session(smtp_server):
    server = smtp_server()
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)
    with transport.session():
        for n in range(5):
            transport.send(notification(key=f"tt-outbox-{n}", items=(item(n),)))
    assert len(server.messages) == 5
    assert server.connections == 1
    # Outside a session each send has its own connection.
    transport.send(notification(key="tt-outbox-99"))
    assert server.connections == 2


def test_starttls_when_offered(smtp_server, server_tls, client_tls):
    server = smtp_server(tls_context=server_tls, require_starttls=True)
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER, ssl_context=client_tls)
    transport.send(notification())
    assert len(server.messages) == 1


def test_starttls_with_an_untrusted_certificate_is_permanent(smtp_server, server_tls):
    server = smtp_server(tls_context=server_tls, require_starttls=True)
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)  # system CAs only
    with pytest.raises(TransportError) as caught:
        transport.send(notification())
    assert caught.value.permanent
    assert "certificate" in caught.value.message
    assert server.messages == []


def test_smtps_implicit_tls(smtp_server, server_tls, client_tls):
    server = smtp_server(implicit_tls=server_tls)
    transport = SmtpTransport(f"smtps://127.0.0.1:{server.port}", SENDER, ssl_context=client_tls)
    with transport.session():
        transport.send(notification(key="a"))
        transport.send(notification(key="b"))
    assert len(server.messages) == 2
    assert server.connections == 1


def test_login_over_starttls_with_a_url_encoded_password(smtp_server, server_tls, client_tls):
    server = smtp_server(
        tls_context=server_tls,
        auth_required=True,
        auth_require_tls=True,
        authenticator=password_check("tracker", PASSWORD),
    )
    url = f"smtp://tracker:{PASSWORD_IN_URL}@127.0.0.1:{server.port}"
    transport = SmtpTransport(url, SENDER, ssl_context=client_tls)
    transport.send(notification())
    assert len(server.messages) == 1
    assert PASSWORD not in repr(transport) and PASSWORD_IN_URL not in repr(transport)


def test_a_refused_login_is_permanent_and_never_shows_the_password(
    smtp_server, server_tls, client_tls
):
    server = smtp_server(
        tls_context=server_tls,
        auth_required=True,
        authenticator=password_check("tracker", "the-right-one"),
    )
    url = f"smtp://tracker:{PASSWORD_IN_URL}@127.0.0.1:{server.port}"
    transport = SmtpTransport(url, SENDER, ssl_context=client_tls)
    with pytest.raises(TransportError) as caught:
        transport.send(notification())
    error = caught.value
    assert error.permanent
    assert "535" in error.message
    for secret in (PASSWORD, PASSWORD_IN_URL, "s3cret"):
        assert secret not in error.message and secret not in str(error)
    assert server.messages == []


def test_a_password_is_not_sent_unencrypted_to_a_remote_server(smtp_server):
    # Only the check on the host name matters here: "localhost" counts as loopback, so the
    # transport is pointed at this machine by another of its names.
    remote_name = socket.gethostname()
    if remote_name in ("localhost",) or remote_name.startswith("127."):
        pytest.skip("this machine has no name other than localhost")
    server = smtp_server()
    try:
        socket.create_connection((remote_name, server.port), 1).close()
    except OSError:
        pytest.skip(f"{remote_name} does not reach the loopback server")
    url = f"smtp://tracker:{PASSWORD_IN_URL}@{remote_name}:{server.port}"
    transport = SmtpTransport(url, SENDER)
    with pytest.raises(TransportError) as caught:
        transport.send(notification())
    assert caught.value.permanent
    assert "STARTTLS" in caught.value.message
    assert PASSWORD not in caught.value.message
    assert server.messages == []


@pytest.mark.parametrize(
    ("handler", "permanent", "code"),
    [
        (Recorder(data_reply="451 4.3.0 Try again later"), False, "451"),
        (Recorder(data_reply="554 5.7.1 Message rejected"), True, "554"),
        (Recorder(rcpt_reply="450 4.2.1 Mailbox busy"), False, "450"),
        (Recorder(rcpt_reply="550 5.1.1 No such user"), True, "550"),
    ],
    ids=["data-4xx", "data-5xx", "rcpt-4xx", "rcpt-5xx"],
)
def test_4xx_is_transient_and_5xx_permanent(smtp_server, handler, permanent, code):
    server = smtp_server(handler)
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)
    with pytest.raises(TransportError) as caught:
        transport.send(notification())
    assert caught.value.permanent is permanent
    assert code in caught.value.message
    assert caught.value.message.startswith(f"email (SMTP 127.0.0.1:{server.port})")


def test_a_session_goes_on_after_a_refused_recipient(smtp_server):
    server = smtp_server(Recorder())
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)
    with transport.session():
        transport.send(notification(key="a"))
        server.handler.rcpt_reply = "550 5.1.1 No such user"
        with pytest.raises(TransportError):
            transport.send(notification(key="b"))
        server.handler.rcpt_reply = None
        transport.send(notification(key="c"))
    assert [parsed(e)["Message-ID"] for e in server.messages] == [
        "<a@force.example>",
        "<c@force.example>",
    ]
    assert server.connections == 1


def test_connection_refused_is_transient():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SmtpTransport(f"smtp://127.0.0.1:{port}", SENDER, timeout=2)
    with pytest.raises(TransportError) as caught:
        transport.send(notification())
    assert not caught.value.permanent
    assert "connection failed" in caught.value.message


def test_a_server_that_never_answers_times_out_as_transient():
    with socket.socket() as silent:  # accepts (the kernel's backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        transport = SmtpTransport(f"smtp://127.0.0.1:{port}", SENDER, timeout=0.5)
        with pytest.raises(TransportError) as caught:
            transport.send(notification())
    assert not caught.value.permanent
    assert "timed out" in caught.value.message


def test_the_html_escapes_a_hostile_name_and_headers_stay_whole(smtp_server):
    server = smtp_server()
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)
    hostile = '<script>alert("x")</script> O\'Neil & <b>Co</b>'
    transport.send(
        notification(
            items=(item(name=hostile + "\r\nBcc: thief@evil.example"),),
            recipient_name="Sgt\r\nBcc: thief@evil.example",
        )
    )
    (envelope,) = server.messages
    assert envelope.rcpt_tos == ["sergeant@force.example"]
    message = parsed(envelope)
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "\n" not in message["To"]
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "<b>Co</b>" not in html
    assert "&lt;script&gt;" in html and "&amp;" in html
    text = message.get_body(("plain",)).get_content()
    assert hostile in text  # the text part shows the name as written, on one line


def test_a_recipient_that_is_not_an_address_is_permanent(smtp_server):
    server = smtp_server()
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER)
    with pytest.raises(TransportError) as caught:
        transport.send(notification(address="S1234"))
    assert caught.value.permanent and "S1234" in caught.value.message
    assert server.connections == 0


@pytest.mark.parametrize(
    ("url", "sender", "names"),
    [
        (None, SENDER, "TT_SMTP_URL"),
        ("smtp://127.0.0.1:25", None, "TT_EMAIL_FROM"),
        ("http://mail.example", SENDER, "TT_SMTP_URL"),
        ("smtp://mail.example:port", SENDER, "TT_SMTP_URL"),
        ("smtp://mail.example", "not an address", "TT_EMAIL_FROM"),
    ],
)
def test_missing_or_unusable_settings_name_the_setting(url, sender, names):
    with pytest.raises(ChannelNotConfigured) as caught:
        SmtpTransport(url or "", sender or "")
    assert names in str(caught.value)


def test_starttls_trusts_the_ca_named_by_ssl_cert_file(
    smtp_server, server_tls, ca, tmp_path, monkeypatch
):
    # What the README tells an operator with a private CA: SSL_CERT_FILE, no code change.
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    server = smtp_server(tls_context=server_tls, require_starttls=True)
    SmtpTransport(f"smtp://127.0.0.1:{server.port}", SENDER).send(notification())
    assert len(server.messages) == 1


def test_names_beyond_ascii_arrive_as_written(smtp_server):
    server = smtp_server()
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", "Tracéur <tracker@force.example>")
    transport.send(notification(items=(item(name="Siân Ó Dálaigh"),), recipient_name="Sgt Zoë"))
    message = parsed(server.messages[0])
    assert message["Subject"] == "Welfare conversation suggested: Siân Ó Dálaigh"
    assert message["To"] == "Sgt Zoë <sergeant@force.example>"
    assert message["From"] == "Tracéur <tracker@force.example>"
    assert "Siân Ó Dálaigh" in message.get_body(("plain",)).get_content()
    assert "Siân Ó Dálaigh" in message.get_body(("html",)).get_content()
    assert all(len(line) <= 998 for line in server.messages[0].original_content.split(b"\r\n"))


def test_credentials_for_a_server_without_auth_are_a_permanent_error(smtp_server):
    server = smtp_server()  # offers no AUTH
    url = f"smtp://tracker:{PASSWORD_IN_URL}@127.0.0.1:{server.port}"
    with pytest.raises(TransportError) as caught:
        SmtpTransport(url, SENDER).send(notification())
    assert caught.value.permanent
    assert "AUTH" in caught.value.message
    assert PASSWORD not in caught.value.message
    assert server.messages == []
