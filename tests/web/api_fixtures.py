"""Calling the API as a persona with a /dev/token bearer token, one token per persona and test
(so the token endpoint's rate limit is never what a test measures)."""

from __future__ import annotations

from tests.web.conftest import PERSONAS


class Caller:
    """`api.get("supervisor", "/api/v1/team")`: the test client, as that persona."""

    def __init__(self, client):
        self.client = client
        self._tokens: dict[tuple[str, tuple[str, ...]], str] = {}

    def headers_as(self, staff_id: str | None, roles: tuple[str, ...] = ()) -> dict[str, str]:
        if staff_id is None:
            return {}
        key = (staff_id, tuple(roles))
        if key not in self._tokens:
            response = self.client.post(
                "/dev/token", json={"staff_id": staff_id, "roles": list(roles)}
            )
            assert response.status_code == 200, response.get_json()
            self._tokens[key] = response.get_json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    def headers(self, persona: str) -> dict[str, str]:
        return self.headers_as(*PERSONAS[persona])

    def get(self, persona: str, url: str, **options):
        return self.client.get(url, headers=self.headers(persona), **options)

    def post(self, persona: str, url: str, **options):
        return self.client.post(url, headers=self.headers(persona), **options)

    def get_as(self, staff_id: str, roles: tuple[str, ...], url: str):
        return self.client.get(url, headers=self.headers_as(staff_id, roles))
