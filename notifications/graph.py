"""Email by Microsoft Graph: `POST {endpoint}/users/{sender}/sendMail` with an app-only token.

The token comes from msal's `ConfidentialClientApplication.acquire_token_for_client` (the
client-credentials grant, scope `{graph host}/.default`). There is one msal application per
(authority, client id, secret) in the process, kept in `_APPS`, so its token cache serves every
transport and dispatch run until the token is near its expiry; msal refreshes it then.

The application object is made on the first send, not in the constructor: msal looks up the
authority's OpenID configuration when it is made, and building the transports must not need
the network. `authority` (TT_GRAPH_AUTHORITY) replaces https://login.microsoftonline.com/TENANT
(a national cloud, or a test identity endpoint); an overridden authority is not checked
against Microsoft's instance discovery, which knows only Microsoft's own hosts.

Idempotency: Graph builds the Message-ID itself, so the notification's key goes in a custom
header, `X-TT-Idempotency-Key` (Graph accepts only custom headers starting with x-).

Answers: 202 (any 2xx) is sent; 401 (after one more try with a new token: the cached one may
have been revoked), 403 and other 4xx are permanent (a wrong secret, a missing Mail.Send
permission, a mailbox outside the app's scope); 429 and 503 honour Retry-After; other 5xx are
transient. A token the identity endpoint refuses (invalid_client, unauthorized_client, ...)
is permanent; one it can't give now (temporarily_unavailable, a network failure) is transient.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any
from urllib.parse import quote, urlsplit

import msal
import msal.exceptions
import requests

from notifications.base import ChannelNotConfigured, Notification, Transport, TransportError
from notifications.http import (
    DEFAULT_TIMEOUT,
    HttpStatusError,
    host_of,
    post_json,
    protect_in_logs,
    scrub,
    secret_spellings,
)
from notifications.render import RenderError, render_email

DEFAULT_ENDPOINT = "https://graph.microsoft.com/v1.0"
IDEMPOTENCY_HEADER = "X-TT-Idempotency-Key"
# What the identity endpoint says when trying again later may work; any other error is taken
# as a setting to fix.
_TRANSIENT_TOKEN_ERRORS = {"temporarily_unavailable", "server_error", "request_timeout"}

_APPS: dict[tuple[str, str, str], msal.ConfidentialClientApplication] = {}
_APPS_LOCK = threading.Lock()


def _application(
    authority: str, client_id: str, client_secret: str, *, custom: bool, timeout: float
) -> msal.ConfidentialClientApplication:
    """The process's one msal application for these credentials (its cache holds the token)."""
    # The secret is part of the key (as a digest) so that a rotated secret gets a new app.
    key = (authority, client_id, hashlib.sha256(client_secret.encode()).hexdigest())
    with _APPS_LOCK:
        app = _APPS.get(key)
        if app is None:
            app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=client_secret,
                authority=authority,
                timeout=timeout,
                # Microsoft's instance discovery knows only Microsoft's hosts.
                instance_discovery=False if custom else None,
            )
            _APPS[key] = app
        return app


def forget_applications() -> None:
    """Drop the cached msal applications (and so their tokens), e.g. between tests."""
    with _APPS_LOCK:
        _APPS.clear()


class GraphMailTransport(Transport):
    """Email sent as `sender` through Microsoft Graph; see the module docstring."""

    channel = "email"

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        sender: str,
        *,
        authority: str | None = None,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        max_wait: float = 10.0,
    ):
        """The TT_GRAPH_* settings. :raise ChannelNotConfigured: naming what is missing."""
        missing = [
            name
            for name, value in (
                ("TT_GRAPH_TENANT_ID", tenant_id),
                ("TT_GRAPH_CLIENT_ID", client_id),
                ("TT_GRAPH_CLIENT_SECRET", client_secret),
                ("TT_GRAPH_SENDER", sender),
            )
            if not value
        ]
        if missing:
            raise ChannelNotConfigured(f"email: set {', '.join(missing)} (Microsoft Graph mail)")
        endpoint = endpoint.rstrip("/")
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.hostname:
            raise ChannelNotConfigured("email: TT_GRAPH_ENDPOINT must be an https:// URL")
        if authority is not None and not authority.startswith("https://"):
            raise ChannelNotConfigured("email: TT_GRAPH_AUTHORITY must be an https:// URL")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.sender = sender
        self.authority = (
            authority.rstrip("/") if authority else f"https://login.microsoftonline.com/{tenant_id}"
        )
        self._custom_authority = authority is not None
        self.endpoint = endpoint
        # Graph's resource is its host: https://graph.microsoft.com/.default (or a cloud's).
        self.scope = f"{parts.scheme}://{parts.netloc}/.default"
        self.timeout = timeout
        self.retries = retries
        self.max_wait = max_wait
        self._url = f"{endpoint}/users/{quote(sender, safe='@')}/sendMail"
        self._where = f"email (Graph {host_of(endpoint)})"
        self._session = requests.Session()

    def __repr__(self) -> str:  # never the secret
        return f"GraphMailTransport({self._where}, sender={self.sender!r})"

    def body(self, n: Notification) -> dict[str, Any]:
        """The sendMail request body for `n`."""
        try:
            subject, _text, html = render_email(n)
        except RenderError as error:
            raise TransportError(
                f"email: can't render the message: {error}", permanent=True
            ) from None
        recipient: dict[str, Any] = {"address": n.address}
        if n.recipient_name:
            recipient["name"] = " ".join(n.recipient_name.split())
        return {
            "message": {
                "subject": subject,
                "body": {"contentType": "HTML", "content": html},
                "toRecipients": [{"emailAddress": recipient}],
                "internetMessageHeaders": [{"name": IDEMPOTENCY_HEADER, "value": n.key}],
            },
            "saveToSentItems": False,
        }

    def send(self, notification: Notification) -> None:
        """Send one email through Graph, or raise TransportError.

        A 401 drops the cached token and tries once more with a new one (a token revoked
        before its expiry); a second 401 is permanent.
        """
        body = self.body(notification)
        for fresh in (False, True):
            token = self._token()
            try:
                post_json(
                    self._session,
                    self._url,
                    body,
                    where=self._where,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                    retries=self.retries,
                    max_wait=self.max_wait,
                    secrets=[token, self._client_secret],
                )
                return
            except HttpStatusError as error:
                if error.status != 401 or fresh:
                    raise
                self._app().remove_tokens_for_client()

    def _app(self) -> msal.ConfidentialClientApplication:
        return _application(
            self.authority,
            self.client_id,
            self._client_secret,
            custom=self._custom_authority,
            timeout=self.timeout,
        )

    def _token(self) -> str:
        hidden = secret_spellings([self._client_secret])
        protect_in_logs(hidden)
        where = f"email (Graph token from {host_of(self.authority)})"
        try:
            result = self._app().acquire_token_for_client(scopes=[self.scope])
        except requests.exceptions.SSLError as error:
            raise TransportError(
                scrub(f"{where}: TLS failed: {error}", hidden), permanent=True
            ) from None
        except (requests.RequestException, OSError) as error:
            raise TransportError(scrub(f"{where}: connection failed ({error})", hidden)) from None
        except ValueError as error:
            # msal: the authority answered 4xx to its OpenID discovery (an unknown tenant) or
            # something that isn't its configuration: a setting to fix.
            raise TransportError(
                scrub(f"{where}: {_first_line(error)}", hidden), permanent=True
            ) from None
        except (msal.exceptions.MsalError, RuntimeError) as error:
            # msal: the authority answered 5xx; it may answer later.
            raise TransportError(scrub(f"{where}: {_first_line(error)}", hidden)) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if token:
            protect_in_logs([token])
            return token
        code = str(result.get("error", "unknown error")) if isinstance(result, dict) else "?"
        description = str(result.get("error_description", "")) if isinstance(result, dict) else ""
        # Entra's descriptions run to several lines with trace ids; the first is the reason.
        reason = _first_line(description)
        raise TransportError(
            scrub(f"{where}: {code}{': ' + reason if reason else ''}", hidden),
            permanent=code not in _TRANSIENT_TOKEN_ERRORS,
        )


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0].strip() if lines else ""
