"""Issue 12's API on SQLite and PostgreSQL: shapes, suppression, CSV, the queue and
assignment, effectiveness, audit with and without a reason, admin retry, and the document."""

from __future__ import annotations

import csv
import io

import pytest

from tests.oversight.conftest import OVERSIGHT_PERSONAS
from tests.web.api_fixtures import Caller

CONTRACT_ROW = {
    "unit_id",
    "name",
    "people",
    "exposures_365d",
    "points_365d_mean",
    "open_alerts",
    "suppressed",
}


class Api(Caller):
    def as_(self, persona: str, method: str, url: str, **options):
        headers = self.headers_as(*OVERSIGHT_PERSONAS[persona])
        return self.client.open(url, method=method, headers=headers, **options)


@pytest.fixture
def api(client):
    return Api(client)


def test_aggregates_by_team_are_the_contract_rows_with_small_teams_suppressed(api):
    response = api.as_("leader", "GET", "/api/v1/aggregates?by=team")
    assert response.status_code == 200
    rows = {row["unit_id"]: row for row in response.json}
    assert all(set(row) == CONTRACT_ROW for row in response.json)
    # T1: P100, P101, P200, P210, P401 (moved in yesterday), P500, P600, P700, P800; P102
    # opted out. T2 (2 people) and T3 (1) are under 5 and hide each other.
    assert rows["T1"]["people"] == 9 and not rows["T1"]["suppressed"]
    assert rows["T1"]["open_alerts"] >= 2
    for team in ("T2", "T3"):
        assert rows[team]["suppressed"] and rows[team]["people"] is None
        assert rows[team]["exposures_365d"] is None and rows[team]["open_alerts"] is None
    assert api.as_("wellbeing", "GET", "/api/v1/aggregates?by=area").json == []


def test_a_bad_level_is_a_400_naming_the_field(api):
    response = api.as_("leader", "GET", "/api/v1/aggregates?by=street")
    assert response.status_code == 400 and response.json["error"].startswith("by:")
    assert api.as_("leader", "GET", "/api/v1/aggregates").json["error"].startswith("by:")


def test_the_csv_is_the_table_as_shown_and_the_trend_has_twelve_months(api):
    response = api.as_("leader", "GET", "/api/v1/aggregates.csv?by=team")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    by_unit = {line["unit_id"]: line for line in lines}
    assert by_unit["T2"]["people"] == "" and by_unit["T2"]["suppressed"] == "yes"
    assert by_unit["T1"]["people"] == "9"
    assert by_unit[""]["name"] == "Whole force"
    trend = api.as_("wellbeing", "GET", "/api/v1/aggregates/trend?by=team").json
    assert len(trend["months"]) == 12
    team_one = next(u for u in trend["units"] if u["unit_id"] == "T1")
    assert sum(m["exposures_per_person"] for m in team_one["months"]) > 0
    trend_csv = api.as_("leader", "GET", "/api/v1/aggregates.csv?by=team&view=trend")
    assert len(trend_csv.get_data(as_text=True).strip().splitlines()) == 1 + 4 * 12


def test_wellbeing_works_the_queue_and_assigns_one_alert(api, web_force):
    alert = web_force.alerts["P101"]
    queue = api.as_("wellbeing", "GET", "/api/v1/queue")
    assert queue.status_code == 200
    assert alert in [item["alert_id"] for item in queue.json]
    assert api.as_("wellbeing", "GET", "/api/v1/queue/members").json[0]["staff_id"] == "P500"
    assigned = api.as_("wellbeing", "POST", f"/api/v1/alerts/{alert}/assign",
                       json={"assignee": "P500"})  # fmt: skip
    assert assigned.status_code == 200
    mine = api.as_("wellbeing", "GET", "/api/v1/queue?assignee=P500").json
    assert [item["alert_id"] for item in mine] == [alert]
    high = api.as_("wellbeing", "GET", "/api/v1/queue?severity=high").json
    assert alert in [item["alert_id"] for item in high]
    # Opened at the evaluation just now: not yet an hour old, and not overdue.
    assert api.as_("wellbeing", "GET", "/api/v1/queue?older_than=1h").json == []
    assert api.as_("wellbeing", "GET", "/api/v1/queue?overdue=true").json == []
    not_member = api.as_("wellbeing", "POST", f"/api/v1/alerts/{alert}/assign",
                         json={"assignee": "P100"})  # fmt: skip
    assert not_member.status_code == 409 and not_member.json["error"].startswith("assignee:")
    missing = api.as_("wellbeing", "POST", "/api/v1/alerts/999999/assign",
                      json={"assignee": "P500"})  # fmt: skip
    assert missing.status_code == 404
    bad = api.as_("wellbeing", "GET", "/api/v1/queue?older_than=soon")
    assert bad.status_code == 400 and bad.json["error"].startswith("older_than:")
    follow_ups = api.as_("wellbeing", "GET", "/api/v1/queue/follow-ups")
    assert follow_ups.status_code == 200  # TRiM's 72h check of P101's alert falls this week
    assert {f["alert_id"] for f in follow_ups.json} <= {alert}


def test_steering_reads_rule_effectiveness_for_a_period(api):
    url = "/api/v1/rules/effectiveness?from=2000-01-01&to=2100-12-31"
    report = api.as_("steering", "GET", url)
    assert report.status_code == 200
    rules = {rule["rule_id"]: rule for rule in report.json["rules"]}
    assert rules["cluster-30d"]["opened"] == 1 and rules["trim-check"]["opened"] == 1
    assert rules["combined-indicator"]["opened"] == 0  # listed from the running pack
    backwards = api.as_(
        "steering", "GET", "/api/v1/rules/effectiveness?from=2025-02-01&to=2025-01-01"
    )
    assert backwards.status_code == 400 and backwards.json["error"].startswith("to:")
    assert api.as_("steering", "GET", "/api/v1/rules/effectiveness").status_code == 400


def test_an_auditor_sees_decisions_and_their_detail_only_with_an_audit_reason(api, web_force):
    url = "/api/v1/audit/decisions?staff_id=P100&rule_id=cluster-30d"
    listed = api.as_("auditor", "GET", url).json
    assert listed["total"] == 1
    ref = listed["decisions"][0]["decision_id"]
    plain = api.as_("auditor", "GET", f"/api/v1/audit/decisions/{ref}").json
    assert plain["input"] is None and plain["detail_shown"] is False
    assert api.as_("officer", "GET", "/api/v1/me/access-log").json == []
    wrong = api.as_("auditor", "GET", f"/api/v1/audit/decisions/{ref}?reason=alert_review")
    assert wrong.status_code == 400 and wrong.json["error"].startswith("reason:")
    shown = api.as_("auditor", "GET", f"/api/v1/audit/decisions/{ref}?reason=audit").json
    assert shown["detail_shown"] and shown["input"]["staff_id"] == "P100"
    assert shown["replay"]["same"] is True
    log = api.as_("officer", "GET", "/api/v1/me/access-log").json
    assert [(e["viewer_id"], e["reason"]) for e in log] == [("P600", "audit")]
    searched = api.as_("auditor", "GET", "/api/v1/audit/access-log?staff_id=P100").json
    assert searched["total"] == 1 and searched["entries"][0]["viewer_name"] == "Ari Auditor"
    chain = api.as_("auditor", "GET", "/api/v1/audit/chain").json
    assert chain["ok"] and chain["entries"] == 3  # P100 twice, P101 once
    assert api.as_("auditor", "GET", "/api/v1/audit/checkpoints").json == []


def test_an_admin_sees_the_outbox_and_retries_a_failed_notification(api, oversight_force):
    outbox = api.as_("admin", "GET", "/api/v1/admin/outbox").json
    assert len(outbox["messages"]) == 1
    message = outbox["messages"][0]["id"]
    assert api.as_("admin", "POST", f"/api/v1/admin/outbox/{message}/retry").status_code == 200
    again = api.as_("admin", "POST", f"/api/v1/admin/outbox/{message}/retry")
    assert again.status_code == 409
    assert api.as_("admin", "POST", "/api/v1/admin/outbox/999999/retry").status_code == 404
    runs = api.as_("admin", "GET", "/api/v1/admin/ingest-runs").json
    assert runs and {"run_id", "source", "outcome", "duration_ms"} <= set(runs[0])
    assert api.as_("admin", "GET", "/api/v1/admin/quarantine").json["total"] == 0
    assert api.as_("admin", "GET", "/api/v1/admin/held").json["total"] == 0
    assert api.as_("admin", "GET", "/api/v1/admin/sources").json == []


def test_the_document_describes_these_routes(api):
    paths = api.as_("leader", "GET", "/api/v1/openapi.json").json["paths"]
    for path in (
        "/api/v1/aggregates",
        "/api/v1/queue",
        "/api/v1/alerts/{alert_id}/assign",
        "/api/v1/rules/effectiveness",
        "/api/v1/audit/decisions/{decision_id}",
        "/api/v1/admin/outbox/{message_id}/retry",
    ):
        assert path in paths, path


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/audit/decisions?staff_id=a%00b",
        "/api/v1/audit/decisions/a%00b",
        "/api/v1/audit/access-log?viewer_id=a%00b",
        "/api/v1/queue?unit_id=a%00b",
        "/api/v1/queue?assignee=a%00b",
        "/api/v1/admin/ingest-runs?feed=a%00b",
    ],
)
def test_a_nul_character_is_answered_not_a_server_error(api, url):
    area = url.split("/")[3].split("?")[0]
    persona = {"audit": "auditor", "queue": "wellbeing", "admin": "admin"}[area]
    response = api.as_(persona, "GET", url)
    assert response.status_code in (200, 400, 404)
