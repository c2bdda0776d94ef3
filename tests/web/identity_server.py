"""A local HTTPS identity endpoint that looks to msal, and to the bearer-token check, like
Microsoft Entra ID: the discovery document, authorize, token and keys endpoints on loopback,
with a certificate from a trustme CA.

`authorize` answers as if the user had just signed in: it redirects straight back with a code.
`token` checks that code, the PKCE verifier, the redirect address and the client secret, and
returns an RS256-signed ID token carrying the nonce (and whatever `user` holds) plus an
access token. A test changes what the next ID token says through `id_token_changes`, signs
it with the key nobody published through `id_token_key = "rogue"`, and signs access tokens of
its own with `token(...)`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_ID = "tt-test-key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class IdentityServer:
    """Entra ID for one tenant and one app registration, on https://127.0.0.1:<port>."""

    def __init__(
        self,
        ca: trustme.CA,
        *,
        tenant: str = "11111111-2222-3333-4444-555555555555",
        client_id: str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        client_secret: str = "the-app-secret",
        key: rsa.RSAPrivateKey | None = None,
        rogue_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = key or new_key()  # published at the keys endpoint
        self.rogue_key = rogue_key or new_key()  # same key id, never published
        self.user: dict[str, Any] = {}  # claims of whoever "signs in" next
        self.id_token_changes: dict[str, Any] = {}  # claims to change in the next ID token
        self.id_token_key = "published"
        self.deny_next = False  # authorize answers access_denied, as on cancel
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, params)
        self._codes: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- addresses ---------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def authority(self) -> str:
        """What TT_OIDC_AUTHORITY would be: https://login.microsoftonline.com/<tenant>."""
        return f"{self.origin}/{self.tenant}"

    @property
    def issuer(self) -> str:
        return f"{self.authority}/v2.0"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.authority}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.authority}/oauth2/v2.0/token",
            "end_session_endpoint": f"{self.authority}/oauth2/v2.0/logout",
            "jwks_uri": f"{self.authority}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [dict(jwk, kid=KEY_ID, use="sig", alg="RS256")]}

    # --- tokens ------------------------------------------------------------------------------

    def token(self, claims: dict[str, Any], *, key: str = "published", **changes: Any) -> str:
        """A JWT from this issuer: `claims` over sensible defaults (an hour's life), then
        `changes` (a value of None removes the claim). `key`: "published" or "rogue"."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "tid": self.tenant,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "2.0",
            **claims,
        }
        for name, value in changes.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        signing = {"published": self.key, "rogue": self.rogue_key}[key]
        return jwt.encode(body, signing, algorithm="RS256", headers={"kid": KEY_ID})

    def access_token(self, user: dict[str, Any], **changes: Any) -> str:
        """An access token for the app's own API, as a user's delegated token."""
        key = changes.pop("key", "published")
        claims = {"aud": self.client_id, "scp": "access_as_user", "azp": "a-bi-tool", **user}
        return self.token(claims, key=key, **changes)

    # --- serving -----------------------------------------------------------------------------

    def __enter__(self) -> IdentityServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        redirect_uri = params.get("redirect_uri", "")
        problems = [
            name
            for name, ok in (
                ("client_id", params.get("client_id") == self.client_id),
                ("response_type", params.get("response_type") == "code"),
                ("code_challenge_method", params.get("code_challenge_method") == "S256"),
                ("code_challenge", bool(params.get("code_challenge"))),
                ("redirect_uri", redirect_uri.startswith(("http://", "https://"))),
                ("scope", "openid" in params.get("scope", "").split()),
            )
            if not ok
        ]
        if problems:
            return _json(400, {"error": "invalid_request", "error_description": str(problems)})
        answer: dict[str, str] = {"state": params.get("state", "")}
        if self.deny_next:
            self.deny_next = False
            answer["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = dict(params)
            answer["code"] = code
        location = redirect_uri + ("&" if "?" in redirect_uri else "?")
        return 302, {"Location": location + urllib.parse.urlencode(answer)}, b""

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            request = self._codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or request is None:
            return _json(400, {"error": "invalid_grant"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _json(401, {"error": "invalid_client"})
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != request["code_challenge"]:
            return _json(400, {"error": "invalid_grant", "error_description": "PKCE"})
        if form.get("redirect_uri") != request["redirect_uri"]:
            return _json(400, {"error": "invalid_grant", "error_description": "redirect_uri"})
        claims = {
            "aud": self.client_id,
            "sub": "pairwise-subject",
            "oid": "00000000-0000-0000-0000-0000000000aa",
            "nonce": request.get("nonce"),
            **self.user,
        }
        changes, self.id_token_changes = self.id_token_changes, {}
        key, self.id_token_key = self.id_token_key, "published"
        body = {
            "token_type": "Bearer",
            "scope": request.get("scope", ""),
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": secrets.token_urlsafe(32),  # for Graph: the tracker never uses it
            "id_token": self.token(claims, key=key, **changes),
        }
        return _json(200, body)

    def answer(self, method: str, path: str, params: dict[str, str]):
        self.requests.append((method, path, params))
        base = f"/{self.tenant}"
        routes = {
            ("GET", f"{base}/v2.0/.well-known/openid-configuration"): lambda: _json(
                200, self.discovery()
            ),
            ("GET", f"{base}/discovery/v2.0/keys"): lambda: _json(200, self.jwks()),
            ("GET", f"{base}/oauth2/v2.0/authorize"): lambda: self._authorize(params),
            ("POST", f"{base}/oauth2/v2.0/token"): lambda: self._token(params),
        }
        route = routes.get((method, path))
        return route() if route else _json(404, {"error": "not_found"})


def _json(status: int, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _handler(server: IdentityServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            self._reply(*server.answer("GET", url.path, params))

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            self._reply(*server.answer("POST", url.path, form))

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler
