"""The request and response shapes of issue 12's API (web.api_oversight), as pydantic models.

spectree reads them to validate requests and responses and to write the OpenAPI document.
Requests take only the fields named here; responses may carry more than a model names.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from engine.alerts.lifecycle import OUTCOMES
from engine.oversight import admin, aggregates, audit_search, queue
from engine.people.access_log import NOTE_MAX, REASONS
from engine.rules.fields import parse_duration
from notifications.outbox import STATUSES

MAX_ID = 2**31 - 1  # the largest id an integer column holds on PostgreSQL

# An identifier or a note as sent: PostgreSQL text can't hold a NUL, so none is accepted.
Ident = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Page(_Request):
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_ID)


class _Period(_Request):
    start: date | None = Field(default=None, alias="from", description="London date, included")
    end: date | None = Field(default=None, alias="to", description="London date, included")


class OverviewQuery(_Request):
    by: Literal[aggregates.LEVELS] = Field(description="the level: team, department or area")  # type: ignore[valid-type]


class CsvQuery(OverviewQuery):
    view: Literal["table", "trend"] = "table"


class AggregateRow(_Shape):
    unit_id: str | None
    name: str
    people: int | None
    exposures_365d: int | None
    points_365d_mean: float | None
    open_alerts: int | None
    suppressed: bool


class AggregateRows(RootModel[list[AggregateRow]]):
    pass


class TrendMonth(_Shape):
    month: str
    exposures_per_person: float | None
    alerts_per_person: float | None


class TrendRow(_Shape):
    unit_id: str | None
    name: str
    people: int | None
    suppressed: bool
    months: list[TrendMonth]


class Trend(_Shape):
    months: list[str]
    units: list[TrendRow]
    total: TrendRow


class QueueQuery(_Request):
    severity: Literal[queue.SEVERITIES] | None = None  # type: ignore[valid-type]
    unit_id: Ident | None = None
    older_than: str | None = Field(
        # At most 9999 days or 999 weeks: the document says all a duration may be.
        default=None,
        pattern=r"^(\d{1,4}[mhd]|\d{1,3}w)$",
        description="a duration: 72h, 7d, 2w",
    )
    overdue: bool | None = None
    escalated: bool | None = None
    assignee: Ident | None = Field(default=None, description="a staff id, or none")

    @field_validator("older_than")
    @classmethod
    def _duration(cls, text: str | None) -> str | None:
        if text is not None:
            parse_duration(text)
        return text


class QueueItem(_Shape):
    alert_id: int
    staff_id: str
    severity: str
    status: str
    opened_at: str
    overdue: bool
    escalated: bool
    assignee_id: str | None


class QueueList(RootModel[list[QueueItem]]):
    pass


class FollowUp(_Shape):
    alert_id: int
    label: str
    due_at: str
    status: str


class FollowUps(RootModel[list[FollowUp]]):
    pass


class Member(_Shape):
    staff_id: str
    display_name: str


class Members(RootModel[list[Member]]):
    pass


class AssignBody(_Request):
    assignee: Ident = Field(min_length=1, description="a wellbeing team member")


class Assigned(_Shape):
    alert_id: int
    assignee_id: str


class EffectivenessQuery(_Request):
    start: date = Field(alias="from")
    end: date = Field(alias="to")


class RuleEffect(_Shape):
    rule_id: str
    opened: int
    acknowledged: int
    median_hours_to_acknowledge: float | None
    outcomes: dict[str, int]
    false_positive_share: float | None


class Effectiveness(_Shape):
    rules: list[RuleEffect]


class DecisionQuery(_Page, _Period):
    staff_id: Ident | None = None
    rule_id: Ident | None = None
    outcome: Literal[audit_search.DECISION_OUTCOMES] | None = None  # type: ignore[valid-type]
    alert_outcome: Literal[OUTCOMES] | None = None  # type: ignore[valid-type]


class DecisionSummary(_Shape):
    decision_id: str
    seq: int
    at: str
    rule_id: str
    staff_id: str
    outcome: str


class DecisionList(_Shape):
    total: int
    decisions: list[DecisionSummary]


class DecisionReason(_Request):
    reason: Literal["audit"] | None = Field(
        default=None, description="audit, to see what the decision saw (logged for the person)"
    )
    note: str | None = Field(default=None, max_length=NOTE_MAX, pattern=r"^[^\x00]*$")


class DecisionDetail(DecisionSummary):
    explanation: dict[str, Any] | None
    detail_shown: bool
    input: dict[str, Any] | None
    ruleset: dict[str, Any]
    criteria: dict[str, Any]


class ChainStatus(_Shape):
    ok: bool
    entries: int
    problem: str | None
    first_bad_seq: int | None
    first_bad_decision_id: str | None


class Checkpoint(_Shape):
    seq: int
    entry_hash: str
    created_at: str
    key_id: str
    entry_matches: bool


class Checkpoints(RootModel[list[Checkpoint]]):
    pass


class AccessQuery(_Page, _Period):
    staff_id: Ident | None = None
    viewer_id: Ident | None = None
    reason: Literal[REASONS] | None = None  # type: ignore[valid-type]


class AccessEntry(_Shape):
    at: str
    viewer_id: str
    staff_id: str
    reason: str


class AccessSearch(_Shape):
    total: int
    entries: list[AccessEntry]


class RunsQuery(_Request):
    outcome: Literal[admin.RUN_OUTCOMES] | None = None  # type: ignore[valid-type]
    feed: Ident | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class IngestRun(_Shape):
    run_id: int
    source: str
    outcome: str
    duration_ms: float | None


class IngestRuns(RootModel[list[IngestRun]]):
    pass


class QuarantineQuery(_Request):
    run_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    limit: int = Field(default=200, ge=1, le=1000)


class Listing(_Shape):
    total: int
    rows: list[dict[str, Any]]


class PulledSource(_Shape):
    source: str
    watermark: str | None
    last_success_at: str | None


class PulledSources(RootModel[list[PulledSource]]):
    pass


class OutboxQuery(_Request):
    status: Literal[(*STATUSES, "all")] = "failed"  # type: ignore[valid-type]


class Delivery(_Shape):
    counts: dict[str, dict[str, int]]
    health: dict[str, dict[str, Any]]
    messages: list[dict[str, Any]]


class Retried(_Shape):
    id: int
    status: str
