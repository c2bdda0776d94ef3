"""Email by SMTP (TT_SMTP_URL, TT_EMAIL_FROM).

- `smtp://host[:port]` (port 25 by default) upgrades to TLS with STARTTLS whenever the server
  offers it; `smtps://host[:port]` (465) speaks TLS from the first byte. `user:password@`
  (percent-encoded in the URL) logs in. A password is never sent over a connection that is
  not encrypted, except to a server on loopback (a local relay).
- One connection serves a whole dispatch run (`session()`); a connection the server dropped
  between messages is opened again once.
- Each message has a plain-text and an HTML part (render.py) and a `Message-ID` derived from
  the notification's key, so a copy sent again after a crash is recognisably the same.
- Replies: 4xx is transient, 5xx permanent (535, a refused login, included); a refused or
  timed-out connection is transient; a certificate that doesn't verify is permanent.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import unquote, urlsplit

from notifications.base import ChannelNotConfigured, Notification, Transport, TransportError
from notifications.http import is_loopback, scrub, secret_spellings
from notifications.render import RenderError, render_email

DEFAULT_TIMEOUT = 30.0
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
FALLBACK_DOMAIN = "trauma-tracker.invalid"
_ADDRESS = re.compile(r"[^@\s<>()\[\]\\,;:\"]+@[^@\s<>()\[\]\\,;:\"]+\.[^@\s<>()\[\]\\,;:\"]+")
_DOT_ATOM = re.compile(r"[A-Za-z0-9_+=-]+(\.[A-Za-z0-9_+=-]+)*")
# Bodies as quoted-printable UTF-8: readable as text where it is ASCII, safe where it isn't.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


_WIRE = compat32.clone(linesep="\r\n")


def _header(text: str) -> str | Header:
    """A header value on one line; a Header (RFC 2047-encoded, folded by the generator) when
    it isn't ASCII."""
    text = " ".join(text.split())
    return text if text.isascii() else Header(text, "utf-8")


def message_id(key: str, domain: str) -> str:
    """The Message-ID for idempotency key `key`: <KEY@domain>, the same every time. A key that
    isn't a plain dot-atom is replaced by a digest of it, so the header is always valid."""
    left = key if _DOT_ATOM.fullmatch(key) else "k" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{left}@{domain}>"


class SmtpTransport(Transport):
    """Email through an SMTP server; see the module docstring."""

    channel = "email"

    def __init__(
        self,
        url: str,
        sender: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ):
        """`url` is TT_SMTP_URL, `sender` TT_EMAIL_FROM ("Name <address>" or an address).
        `ssl_context` replaces the system's trusted certificates (a private CA).

        :raise ChannelNotConfigured: when either is missing or can't be used.
        """
        if not url or not sender:
            raise ChannelNotConfigured(
                "email: set TT_SMTP_URL and TT_EMAIL_FROM, or the TT_GRAPH_* settings"
            )
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ChannelNotConfigured(
                "email: TT_SMTP_URL must look like smtp://host:port or smtps://host:port "
                "(with user:password@ before the host to log in)"
            )
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ChannelNotConfigured(
                "email: TT_SMTP_URL has a port that isn't a number"
            ) from None
        display, address = parseaddr(sender)
        if (
            "\r" in sender
            or "\n" in sender
            or not address.isascii()
            or not _ADDRESS.fullmatch(address)
        ):
            raise ChannelNotConfigured(f"email: TT_EMAIL_FROM is not an email address: {sender!r}")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = port
        self.user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self._from_header = formataddr((" ".join(display.split()), address)) if display else address
        self.envelope_from = address
        self.domain = address.rpartition("@")[2] or FALLBACK_DOMAIN
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._where = f"email (SMTP {self.host}:{self.port})"
        self._secrets = secret_spellings([self._password] if self._password else [])
        self._connection: smtplib.SMTP | None = None
        self._in_session = False
        self.connections_opened = 0  # for the dispatcher's report and the tests

    def __repr__(self) -> str:  # never the password
        return f"SmtpTransport({self._where})"

    @contextmanager
    def session(self) -> Iterator[SmtpTransport]:
        """One connection for every send inside; closed (QUIT) at the end."""
        self._in_session = True
        try:
            yield self
        finally:
            self._in_session = False
            self._close()

    def build_message(self, n: Notification) -> Message:
        """The email for `n`: both parts, a stable Message-ID, no auto-replies asked for.

        Built with the classic MIME classes, several times faster than EmailMessage's header
        registry; so every header value here is made single-line first (names and subjects by
        render.py, addresses checked), which is what keeps a hostile name from adding a header.
        """
        if not n.address.isascii() or not _ADDRESS.fullmatch(n.address):
            raise TransportError(
                f"email: recipient {n.address!r} is not an email address", permanent=True
            )
        try:
            subject, text, html = render_email(n)
        except RenderError as error:
            raise TransportError(
                f"email: can't render the message: {error}", permanent=True
            ) from None
        message = MIMEMultipart("alternative")
        message["Subject"] = _header(subject)
        message["From"] = self._from_header
        name = " ".join((n.recipient_name or "").split())
        message["To"] = formataddr((name, n.address)) if name else n.address
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = message_id(n.key, self.domain)
        # An automatic message: no out-of-office replies to it (RFC 3834; Exchange's header).
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message.attach(MIMEText(text, "plain", _UTF8_QP))
        message.attach(MIMEText(html, "html", _UTF8_QP))
        return message

    def send(self, notification: Notification) -> None:
        """Send one email, on the session's connection when inside `session()`."""
        message = self.build_message(notification)
        try:
            if not self._in_session:
                connection = self._connect()
                try:
                    self._deliver(connection, message, notification.address)
                finally:
                    self._quit(connection)
                return
            if self._connection is None:
                self._connection = self._connect()
            try:
                self._deliver(self._connection, message, notification.address)
            except smtplib.SMTPServerDisconnected:
                # The server closed an idle connection between two messages: open it again
                # once. The copy, if the first did arrive, has the same Message-ID.
                self._close()
                self._connection = self._connect()
                self._deliver(self._connection, message, notification.address)
        except TransportError:
            self._close()
            raise
        except (smtplib.SMTPException, OSError) as error:
            if not isinstance(error, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused):
                self._close()  # the connection's state is unknown; start afresh next time
            raise self._classify(error) from None

    def _deliver(self, connection: smtplib.SMTP, message: Message, to: str) -> None:
        # smtplib sends bytes as they are: the lines must already end in CRLF.
        connection.sendmail(self.envelope_from, [to], message.as_bytes(policy=_WIRE))

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        connection: smtplib.SMTP
        try:
            if self.implicit_tls:
                connection = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=context,
                    local_hostname=self._local_hostname,
                )
            else:
                connection = smtplib.SMTP(
                    self.host, self.port, timeout=self.timeout, local_hostname=self._local_hostname
                )
        except (smtplib.SMTPException, OSError) as error:
            raise self._classify(error) from None
        self.connections_opened += 1
        try:
            connection.ehlo()
            encrypted = self.implicit_tls
            if not encrypted and connection.has_extn("starttls"):
                connection.starttls(context=context)
                connection.ehlo()
                encrypted = True
            if self.user is not None:
                if not encrypted and not is_loopback(self.host):
                    raise TransportError(
                        f"{self._where}: the server does not offer STARTTLS; refusing to send "
                        "the password unencrypted (use smtps:// or a server with STARTTLS)",
                        permanent=True,
                    )
                connection.login(self.user, self._password or "")
        except BaseException as error:
            self._quit(connection)
            if isinstance(error, smtplib.SMTPException | OSError):
                raise self._classify(error) from None
            raise
        return connection

    def _classify(self, error: BaseException) -> TransportError:
        """The one error a send raises, permanent or not by the server's reply."""
        code: int | None = None
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(error.recipients.values()), (None, b""))
            problem = f"recipient refused: {code} {_text(reply)}"
        elif isinstance(error, smtplib.SMTPResponseException):
            code = error.smtp_code
            what = "login refused" if isinstance(error, smtplib.SMTPAuthenticationError) else ""
            problem = f"{what + ': ' if what else ''}{code} {_text(error.smtp_error)}"
        elif isinstance(error, smtplib.SMTPNotSupportedError):
            return TransportError(
                self._scrub(f"{self._where}: {error or 'not supported by the server'}"),
                permanent=True,
            )
        elif isinstance(error, ssl.SSLCertVerificationError):
            return TransportError(
                self._scrub(f"{self._where}: TLS certificate not trusted: {error.verify_message}"),
                permanent=True,
            )
        elif isinstance(error, smtplib.SMTPServerDisconnected):
            problem = f"connection closed by the server ({error})"
        elif isinstance(error, socket.timeout | TimeoutError):
            problem = f"timed out after {self.timeout:g}s"
        elif isinstance(error, OSError):
            problem = f"connection failed ({error.strerror or error})"
        else:
            # smtplib's own complaints, e.g. "No suitable authentication method found": the
            # server and the settings don't fit, and asking again won't change that.
            return TransportError(
                self._scrub(f"{self._where}: {error or type(error).__name__}"), permanent=True
            )
        permanent = code is not None and 500 <= code < 600
        return TransportError(self._scrub(f"{self._where}: {problem}"), permanent=permanent)

    def _scrub(self, message: str) -> str:
        return scrub(message, self._secrets)

    def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self._quit(connection)

    @staticmethod
    def _quit(connection: smtplib.SMTP) -> None:
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())
