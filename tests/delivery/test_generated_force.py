"""Done when: a generated force, ingested and evaluated, and `notify` run: every supervisor
receives at a local SMTP server and a local webhook one correct message per alert (or one
digest); nothing that should have gone is pending; a second `notify` sends nothing. And no
message the code can produce for that force carries incident or health detail."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.scoring.criteria import load_criteria
from engine.sqltime import LONDON
from models import (
    Absence,
    Exposure,
    Incident,
    Occurrence,
    OutboxMessage,
    PersonVersion,
    Unit,
    table_of,
)
from tests.delivery.conftest import BASE_URL, SENDER, WELLBEING
from tests.delivery.servers import card_text
from trauma_tracker.cli import main
from trauma_tracker.settings import SHIPPED_RULES
from trauma_tracker.synthetic import generate_force


@pytest.fixture(scope="module")
def force_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("force")
    generate_force(folder, people=300, years=1, seed=5)  # up to today: its alerts are recent
    return folder


def noon_tomorrow(days: int = 1) -> datetime:
    """12:00 London a few days on: after every row's due time, outside quiet hours."""
    day = datetime.now(LONDON).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, 12, tzinfo=LONDON).astimezone(UTC)


class Tracker:
    """The command line against one database, with delivery pointed at the test's servers."""

    def __init__(self, database_url: str, smtp, webhook):
        self.url = database_url
        self.env = {
            "TT_SMTP_URL": smtp.url,
            "TT_EMAIL_FROM": SENDER,
            "TT_TEAMS_WEBHOOK_URL": webhook.url,
            "TT_BASE_URL": BASE_URL,
        }

    def __call__(self, *args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, ["--db", self.url, *args], env=self.env)
        assert result.exit_code == code, result.output
        return result.stdout

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json"))


def ingested(database_url, force_files, smtp, webhook) -> Tracker:
    tracker = Tracker(database_url, smtp, webhook)
    tracker("init")
    tracker("ingest", str(force_files))
    tracker("evaluate")
    return tracker


def table(engine: sa.Engine, model, *columns: str) -> list:
    t = table_of(model)
    with engine.connect() as conn:
        return conn.execute(sa.select(*(t.c[c] for c in columns))).all()


def test_each_supervisor_receives_one_correct_message_and_a_rerun_sends_nothing(
    database_url, force_files, smtp, webhook
):
    tracker = ingested(database_url, force_files, smtp, webhook)
    alerts = tracker.json("alerts", "--status", "all")
    assert len(alerts) >= 5
    engine = sa.create_engine(database_url)
    try:
        email_of = {s: e for s, e in table(engine, PersonVersion, "staff_id", "email")}
        names = defaultdict(set)
        for staff_id, name in table(engine, PersonVersion, "staff_id", "display_name"):
            names[staff_id].add(name)
        rows = table(engine, OutboxMessage, "alert_id", "channel", "recipient", "payload")
    finally:
        engine.dispose()
    expected: dict[tuple[str, str], set[int]] = defaultdict(set)
    person_of = {a["alert_id"]: a["staff_id"] for a in alerts}
    for alert in alerts:
        assert alert["recipients"], alert
    for alert_id, channel, recipient, payload in rows:
        address = recipient if "@" in recipient else email_of[recipient]
        expected[(channel, address)].add(alert_id)
        assert json.loads(payload)["name"] in names[person_of[alert_id]]
    supervisors = {r for _, _, r, _ in rows if "@" not in r}
    assert supervisors and WELLBEING in {a for _, a in expected}

    report = tracker.json("notify", "--now", noon_tomorrow().isoformat())

    assert (report["failed"], report["deferred"]) == (0, 0)
    assert report["sent"] == len(expected)  # one message per recipient and channel
    got_mail = defaultdict(list)
    for mail in smtp.mails:
        (to,) = mail.to
        got_mail[to].append(set(map(int, re.findall(r"/alerts/(\d+)", mail.plain))))
    assert {to: msgs for to, msgs in got_mail.items()} == {
        address: [ids] for (channel, address), ids in expected.items() if channel == "email"
    }
    got_cards = defaultdict(list)
    for card in webhook.cards:
        content = card["attachments"][0]["content"]
        (mention,) = content["msteams"]["entities"]
        ids = set(map(int, re.findall(r"/alerts/(\d+)", json.dumps(card))))
        got_cards[mention["mentioned"]["id"]].append(ids)
    assert dict(got_cards) == {
        address: [ids] for (channel, address), ids in expected.items() if channel == "teams"
    }
    for mail in smtp.mails:  # every alert in a message names its person
        for alert_id in map(int, re.findall(r"/alerts/(\d+)", mail.plain)):
            assert any(name in mail.plain for name in names[person_of[alert_id]])
    assert tracker.json("outbox", "--status", "pending") == []
    assert tracker.json("outbox", "--status", "failed") == []

    again = tracker.json("notify", "--now", (noon_tomorrow() + timedelta(hours=1)).isoformat())
    assert (again["sent"], again["failed"], again["deferred"]) == (0, 0, 0)
    assert len(smtp.mails) == sum(len(v) for v in got_mail.values())
    assert len(webhook.cards) == len(got_cards)


def leaks(text: str, forbidden: set[str]) -> list[str]:
    """The forbidden strings `text` shows: a code or reference as a token of its own (or a
    part of a link), a label or place as a phrase."""
    shown = set(re.findall(r"[\w/.:-]+", text))
    shown |= {part for token in shown for part in re.split(r"[/.:-]", token)}
    found = sorted(shown & forbidden)
    return found + sorted(f for f in forbidden if re.search(r"\s", f) and f in text)


def table_values(database_url: str, model, column: str) -> set[str]:
    engine = sa.create_engine(database_url)
    try:
        return {value for (value,) in table(engine, model, column)}
    finally:
        engine.dispose()


def forbidden_strings(database_url: str) -> set[str]:
    """What no message may show: incident references and codes, qualifiers and flags, HOCR
    codes, absence types and reasons, exposure categories (ids and labels), places."""
    engine = sa.create_engine(database_url)
    found: set[str] = set()
    try:
        for model, columns in (
            (Incident, ("incident_urn", "opening_code", "closing_code", "qualifiers", "grade")),
            (Occurrence, ("occurrence_ref", "hocr_code", "crime_flags", "iioc_category")),
            (Absence, ("absence_type", "reason_group")),
            (Exposure, ("ref", "category")),
            (Unit, ("name",)),
        ):
            for row in table(engine, model, *columns):
                for value in row:
                    found.update(str(value).split("|") if value else ())
    finally:
        engine.dispose()
    criteria, _ = load_criteria(SHIPPED_RULES)
    for category in criteria.categories:
        found.update((category.id, category.label))
    return {s for s in found if len(s.strip()) >= 3}


def test_no_message_for_the_force_shows_incident_or_health_detail(
    database_url, force_files, smtp, webhook
):
    tracker = ingested(database_url, force_files, smtp, webhook)
    alerts = tracker.json("alerts", "--status", "all")
    opened = datetime.fromisoformat(alerts[0]["opened_at"])
    tracker("notify", "--now", noon_tomorrow().isoformat())  # alerts and digests
    # Conversation requests, as the web app writes them (INTERFACES.md).
    engine = sa.create_engine(database_url)
    try:
        display = dict(table(engine, PersonVersion, "staff_id", "display_name"))
        with engine.begin() as conn:
            for staff_id in sorted({a["staff_id"] for a in alerts})[:3]:
                body = {
                    "kind": "conversation_request",
                    "staff_id": staff_id,
                    "name": display[staff_id],
                    "title": "asked for a welfare conversation",
                    "severity": "low",
                    "link": f"/people/{staff_id}",
                }
                for channel in ("email", "teams"):
                    row = {"alert_id": None, "kind": "conversation_request", "channel": channel}
                    row |= {"recipient": WELLBEING, "payload": json.dumps(body)}
                    row |= {"status": "pending", "due_at": opened, "created_at": opened}
                    conn.execute(table_of(OutboxMessage).insert().values(**row, attempts=0))
    finally:
        engine.dispose()
    escalate_at = opened + timedelta(hours=73)
    tracker("alerts", "escalate", "--now", escalate_at.isoformat())
    tracker("alerts", "follow-ups", "--now", (opened + timedelta(days=29)).isoformat())
    tracker("notify", "--now", noon_tomorrow(30).isoformat())

    kinds = {row["kind"] for row in tracker.json("outbox", "--status", "sent")}
    assert kinds == {"alert", "escalation", "follow_up", "conversation_request"}
    assert tracker.json("outbox", "--status", "failed") == []
    subjects = {m.subject.split(" ")[0] for m in smtp.mails}
    assert len(subjects) >= 4  # alert, digest, escalation, follow-up, conversation request
    rendered = [m.text + "\n" + m.subject for m in smtp.mails]
    rendered += [card_text(card) for card in webhook.cards]
    words = [m.plain + "\n" + m.subject for m in smtp.mails]
    words += [card_text(card, ("text", "title")) for card in webhook.cards]
    assert len(rendered) == len(smtp.mails) + len(webhook.cards) > 10

    forbidden = forbidden_strings(database_url)
    assert len(forbidden) > 100
    some_ref = sorted(table_values(database_url, Incident, "incident_urn"))[0]
    # The check can fail: a reference or a category's label in a message is caught.
    assert leaks(f"See https://x.example/i/{some_ref}.", forbidden) == [some_ref]
    assert leaks("after Death or serious injury of a child", forbidden)
    for text in rendered:
        assert leaks(text, forbidden) == [], text
    # No points or indicator values: the only numbers are in the links, the keys and the
    # rules' titles ("... in 30 days").
    titles = {a["rule_id"] for a in alerts}
    allowed = re.compile(r"https?://\S+|Ref: \S+|Cluster of serious exposures in 30 days")
    for text in words:
        stripped = allowed.sub("", text)
        assert not re.search(r"\d", stripped), (titles, stripped)
