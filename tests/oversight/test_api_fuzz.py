"""Issue 12's routes fuzzed by schemathesis against the API's own OpenAPI document, in process
(WSGI), on SQLite and PostgreSQL: no 500, and every answer matches the document.

The caller holds every issue-12 role, so the fuzzer gets past the permission checks to the
validation and the engine behind them (tests/web/test_fuzz_api.py walks operations the same
way, for the same reason: schemathesis's pytest plugin does not load with pytest 9).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.web.api_fixtures import Caller

MAX_EXAMPLES = 8  # per operation and database
ROLES = ("wellbeing", "leader", "steering", "auditor", "admin")
# A period whose `to` is before its `from` is refused with 400, a rule the document can't
# state: for these operations a schema-valid request may rightly be refused.
PERIODS = ("/api/v1/rules/effectiveness", "/api/v1/audit/decisions", "/api/v1/audit/access-log")
PREFIXES = ("/api/v1/aggregates", "/api/v1/queue", "/api/v1/rules", "/api/v1/audit",
            "/api/v1/admin", "/api/v1/alerts/{alert_id}/assign")  # fmt: skip


def test_no_answer_is_a_server_error_or_off_the_document(app, client):
    headers = Caller(client).headers_as("P500", ROLES)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers)
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.path.startswith(PREFIXES)
    ]
    assert len(operations) == 19
    for operation in operations:
        excluded = [positive_data_acceptance] if operation.path in PERIODS else []
        _fuzzer(operation, headers, excluded)()


def _fuzzer(operation, headers, excluded):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    return fuzz
