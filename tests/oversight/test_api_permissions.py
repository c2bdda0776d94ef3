"""Who may use issue 12's API: every persona against every route, on SQLite and PostgreSQL,
and a walk of the URL map that fails for a route of the oversight blueprint without a
permission decision or a row here.

Allowed means any answer but a denial (and never a 500); denied is 403 for a signed-in user
and 401 for nobody. Each persona gets a fresh force; reads come before writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.oversight.conftest import OVERSIGHT_PERSONAS
from tests.web.api_fixtures import Caller
from web.auth import PERMISSION_ATTRIBUTE

OVERVIEW = frozenset({"leader", "wellbeing"})
QUEUE = frozenset({"wellbeing"})
STEERING = frozenset({"steering"})
AUDIT = frozenset({"auditor"})
ADMIN = frozenset({"admin"})


@dataclass(frozen=True)
class Case:
    endpoint: str
    method: str
    url: str  # {alert}: P100's open alert; {decision}: its decision; {message}: a failed one
    allowed: frozenset[str]
    json: dict | None = None


CASES = [
    Case("oversight.aggregate_rows", "GET", "/api/v1/aggregates?by=team", OVERVIEW),
    Case("oversight.aggregate_trend", "GET", "/api/v1/aggregates/trend?by=area", OVERVIEW),
    Case("oversight.aggregate_csv", "GET", "/api/v1/aggregates.csv?by=team", OVERVIEW),
    Case("oversight.queue_list", "GET", "/api/v1/queue?overdue=false", QUEUE),
    Case("oversight.queue_follow_ups", "GET", "/api/v1/queue/follow-ups", QUEUE),
    Case("oversight.queue_members", "GET", "/api/v1/queue/members", QUEUE),
    Case("oversight.rule_effectiveness", "GET",
         "/api/v1/rules/effectiveness?from=2020-01-01&to=2030-12-31", STEERING),
    Case("oversight.audit_decisions", "GET", "/api/v1/audit/decisions?limit=5", AUDIT),
    Case("oversight.audit_decision", "GET", "/api/v1/audit/decisions/{decision}", AUDIT),
    Case("oversight.audit_decision", "GET",
         "/api/v1/audit/decisions/{decision}?reason=audit", AUDIT),
    Case("oversight.audit_decision", "GET", "/api/v1/audit/decisions/nothing-here", AUDIT),
    Case("oversight.audit_chain", "GET", "/api/v1/audit/chain", AUDIT),
    Case("oversight.audit_checkpoints", "GET", "/api/v1/audit/checkpoints", AUDIT),
    Case("oversight.audit_access_log", "GET", "/api/v1/audit/access-log?reason=audit", AUDIT),
    Case("oversight.admin_ingest_runs", "GET", "/api/v1/admin/ingest-runs", ADMIN),
    Case("oversight.admin_quarantine", "GET", "/api/v1/admin/quarantine", ADMIN),
    Case("oversight.admin_held", "GET", "/api/v1/admin/held", ADMIN),
    Case("oversight.admin_sources", "GET", "/api/v1/admin/sources", ADMIN),
    Case("oversight.admin_outbox", "GET", "/api/v1/admin/outbox", ADMIN),
    # writes
    Case("oversight.assign_alert", "POST", "/api/v1/alerts/{alert}/assign", QUEUE,
         json={"assignee": "P500"}),
    Case("oversight.admin_retry", "POST", "/api/v1/admin/outbox/{message}/retry", ADMIN),
]  # fmt: skip


def _references(engine: sa.Engine, alert_id: int) -> dict[str, str]:
    with engine.connect() as conn:
        decision = conn.execute(
            sa.text("SELECT decision_id FROM decisions WHERE alert_id = :a"), {"a": alert_id}
        ).scalar_one()
        message = conn.execute(sa.text("SELECT id FROM outbox WHERE status = 'failed'")).scalar()
    return {"alert": str(alert_id), "decision": decision, "message": str(message)}


@pytest.mark.parametrize("persona", list(OVERSIGHT_PERSONAS))
def test_each_persona_may_do_what_the_matrix_says_and_nothing_else(
    persona, client, oversight_force
):
    references = _references(oversight_force.engine, oversight_force.alerts["P100"])
    caller = Caller(client)
    staff_id, roles = OVERSIGHT_PERSONAS[persona]
    headers = caller.headers_as(staff_id, roles)
    wrong = []
    for case in CASES:
        url = case.url.format(**references)
        response = client.open(url, method=case.method, headers=headers, json=case.json)
        response.close()
        assert response.status_code != 500, (persona, case.method, url)
        expected = 401 if persona == "anonymous" else 403
        denied = response.status_code in (401, 403)
        if denied and response.status_code != expected:
            wrong.append((case.method, url, f"wrong denial {response.status_code}"))
        if denied == (persona in case.allowed):
            want = "allowed" if persona in case.allowed else "denied"
            wrong.append((case.method, url, f"expected {want}, got {response.status_code}"))
    assert wrong == []


def test_every_oversight_route_has_a_permission_decision_and_a_row_here(app):
    listed = {(c.endpoint, c.method) for c in CASES}
    undecided, unlisted = [], []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("oversight."):
            continue
        if getattr(app.view_functions[rule.endpoint], PERMISSION_ATTRIBUTE, None) is None:
            undecided.append(str(rule))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) not in listed:
                unlisted.append(f"{method} {rule}")
    assert undecided == [] and unlisted == []
    assert len({c.endpoint for c in CASES}) == 19
