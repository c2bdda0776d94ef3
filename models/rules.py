"""Tables for intervention rules: ruleset versions, decisions (hash-chained), alerts, outbox.

JSON columns are text holding canonical JSON, so the audit hash is computed over exactly the
stored characters on every database. Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models import compare_text_bytewise


class RulesetVersion(SQLModel, table=True):
    """A pack that loaded cleanly: kept so that a bad edit falls back to it, and for replay."""

    __tablename__ = "ruleset_versions"

    ruleset_hash: str = Field(primary_key=True)
    routing_hash: str = Field(primary_key=True)
    rules: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of definitions
    routing: str = Field(sa_column=Column(Text, nullable=False))  # JSON routing definition
    source: str
    first_loaded_at: datetime
    last_active_at: datetime = Field(index=True)


class RuleRun(SQLModel, table=True):
    """One run of the rules, summarised: firings are decisions; the rest are only counted here."""

    __tablename__ = "rule_runs"

    id: int | None = Field(default=None, primary_key=True)
    ruleset_hash: str
    as_of: datetime
    started_at: datetime
    duration_ms: float
    people: int
    people_evaluated: int
    exposures: int
    exposures_evaluated: int
    rules: int
    firings: int
    alerts_opened: int
    disagreements: int


class Decision(SQLModel, table=True):
    """A rule firing, explained. `seq` orders the chain; `entry_hash` covers the columns above
    `prev_hash` (texts through their digests) and `prev_hash` itself."""

    __tablename__ = "decisions"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    decision_id: str = Field(unique=True)
    at: datetime  # the evaluation time the rule saw
    recorded_at: datetime
    rule_id: str
    rule_version: str
    ruleset_hash: str
    criteria_hash: str | None = None
    staff_id: str = Field(index=True)
    subject: str  # snapshot | exposure
    outcome: str  # alert_opened | suppressed_open_alert | suppressed_cooldown
    alert_id: int | None = None
    # What the rule saw and why it fired, as JSON. The chain covers their digests, not the
    # text, so a person's data can be erased on opt-out and the chain still verifies.
    input: str | None = Field(default=None, sa_column=Column(Text))
    input_digest: str
    explanation: str | None = Field(default=None, sa_column=Column(Text))
    explanation_digest: str
    erased_at: datetime | None = None
    prev_hash: str
    entry_hash: str


class AuditHead(SQLModel, table=True):
    """The chain's last entry, updated in the decision's transaction: it catches a cut tail."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    entry_hash: str
    updated_at: datetime | None = None


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement that the chain had `entry_hash` at `seq`; exported for later checks."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    seq: int
    entry_hash: str
    created_at: datetime
    key_id: str  # which key signed it (a hash of the key, never the key)
    signature: str


class Alert(SQLModel, table=True):
    """One welfare alert for a person and rule. `open_key` is set while unresolved: unique, so
    the database itself refuses a second open alert for the same person and rule."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: str = Field(index=True)
    rule_id: str
    rule_version: str
    ruleset_hash: str
    severity: str
    title: str
    status: str = Field(index=True)  # open | acknowledged | resolved
    open_key: str | None = Field(default=None, unique=True)
    opened_at: datetime
    decision_id: str
    notify: str = Field(sa_column=Column(Text, nullable=False))  # JSON recipient names
    recipients: str = Field(sa_column=Column(Text, nullable=False))  # JSON resolved recipients
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    outcome: str | None = None
    note: str | None = Field(default=None, sa_column=Column(Text))
    escalated_at: datetime | None = None


class AlertEvent(SQLModel, table=True):
    """Who did what to an alert, and when."""

    __tablename__ = "alert_events"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(index=True)
    at: datetime
    actor: str
    action: str  # opened | acknowledged | resolved | escalated | follow_up
    detail: str | None = Field(default=None, sa_column=Column(Text))


class AlertFollowUp(SQLModel, table=True):
    __tablename__ = "alert_follow_ups"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(index=True)
    label: str  # the rule's duration, e.g. 72h
    due_at: datetime = Field(index=True)
    status: str = "pending"  # pending | sent | cancelled
    done_at: datetime | None = None


class OutboxMessage(SQLModel, table=True):
    """A notification to send, written in the alert's transaction; the dispatcher sends it.

    The payload names who needs a conversation, why in one line, and a link: no incident or
    health details.
    """

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int | None = Field(default=None, index=True)
    kind: str  # alert | escalation | follow_up | conversation_request
    channel: str  # email | teams
    recipient: str  # a staff id or an address
    payload: str = Field(sa_column=Column(Text, nullable=False))
    # pending | claimed | sent | failed | cancelled (a follow-up no longer needed)
    status: str = Field(default="pending", index=True)
    due_at: datetime = Field(index=True)
    created_at: datetime
    attempts: int = 0  # counted when claimed, before the send (notifications.outbox)
    claimed_at: datetime | None = None
    # A claim ends here: a dispatcher that died leaves the row to be claimed again after it.
    lease_until: datetime | None = None
    claimed_by: str | None = None  # the claiming dispatch run
    # The idempotency key of the message this row went out in (Message-ID, the card's id):
    # kept across attempts, so a copy sent again after a crash can be recognised.
    message_key: str | None = None
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class RuleMark(SQLModel, table=True):
    """The last snapshot evaluated for a person under a ruleset: an unchanged one is skipped."""

    __tablename__ = "rule_marks"

    staff_id: str = Field(primary_key=True)
    ruleset_hash: str
    fingerprint: str
    recheck_after: datetime | None = None  # a cooldown ended or an alert was resolved


class ExposureMark(SQLModel, table=True):
    """An exposure the exposure rules have seen: each is evaluated once."""

    __tablename__ = "exposure_marks"

    exposure_key: str = Field(primary_key=True)
    staff_id: str = Field(index=True)
    evaluated_at: datetime


compare_text_bytewise()  # models/__init__.py: on PostgreSQL, text compares bytewise
