"""The JSON API's request and response shapes (CONTRACT section 5), as pydantic models.

spectree reads these to validate requests and responses and to write the OpenAPI document, so
the document and the code can't drift apart. Responses may carry more fields than a model
names (the contract can be extended freely); requests may not.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationInfo, field_validator

from engine.alerts.lifecycle import OUTCOMES
from engine.alerts.view import STATUS_FILTERS
from engine.people.access_log import NOTE_MAX, REASONS


class _Shape(BaseModel):
    """A response: the fields named here must be there; more may follow."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Request(BaseModel):
    """A request: only the fields named here, each as described. Text may not hold NUL
    characters (PostgreSQL can't store them; no person types one)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class ErrorBody(BaseModel):
    error: str = Field(description="what was wrong, naming the field when one was")


# --- requests --------------------------------------------------------------------------------


class PersonQuery(_Request):
    """Why you are looking at another person's record (written to their access log)."""

    reason: Literal[REASONS] = Field(description="why you are looking")  # type: ignore[valid-type]
    note: str | None = Field(
        default=None,
        max_length=NOTE_MAX,
        validate_default=True,
        description="what it is about; required when the reason is `other`",
    )

    @field_validator("note")
    @classmethod
    def _note_for_other(cls, note: str | None, info: ValidationInfo) -> str | None:
        note = (note or "").strip() or None
        if info.data.get("reason") == "other" and note is None:
            raise ValueError("a note is required when the reason is other")
        return note


class AlertQuery(_Request):
    status: Literal[STATUS_FILTERS] = Field(  # type: ignore[valid-type]
        default="open", description="which alerts: open (the default), acknowledged, ..."
    )


class AcknowledgeBody(_Request):
    note: str | None = Field(default=None, max_length=2000)


class ResolveBody(_Request):
    outcome: Literal[OUTCOMES] = Field(  # type: ignore[valid-type]
        description="what came of the welfare conversation"
    )
    note: str | None = Field(default=None, max_length=2000)


# --- responses -------------------------------------------------------------------------------


class Me(_Shape):
    staff_id: str
    display_name: str
    roles: list[str]
    opted_out: bool
    is_supervisor: bool


class OptedOut(_Shape):
    opted_out: bool


class Window(_Shape):
    points: float
    exposures: int


class Windows(_Shape):
    d30: Window = Field(alias="30d")
    d90: Window = Field(alias="90d")
    d365: Window = Field(alias="365d")
    y5: Window = Field(alias="5y")


class ExposureItem(_Shape):
    ref: str
    feed: str
    category: str
    label: str | None = None
    tier: int
    role: str
    points: float
    at: str


class Exposure(_Shape):
    """`exposure --json`; an opted-out person's has only staff_id and opted_out."""

    staff_id: str
    opted_out: bool
    as_of: str | None = None
    windows: Windows | None = None
    exposures: list[ExposureItem] | None = None


class AccessLogItem(_Shape):
    at: str
    viewer_id: str
    viewer_name: str
    reason: str
    note: str | None


class AccessLog(RootModel[list[AccessLogItem]]):
    pass


class SeriousExposure(_Shape):
    at: str
    category: str
    label: str | None = None
    tier: int
    role: str


class TeamMember(_Shape):
    staff_id: str
    display_name: str
    windows: Windows
    open_alerts: int
    serious_7d: list[SeriousExposure]
    unit_id: str
    supervisor_id: str | None
    direct: bool = Field(description="reports to me themselves, not further down the chain")


class Team(_Shape):
    people: list[TeamMember]
    opted_out_count: int


class AlertItem(_Shape):
    alert_id: int
    staff_id: str
    rule_id: str
    severity: str
    status: str
    opened_at: str
    recipients: list[str]


class AlertList(RootModel[list[AlertItem]]):
    pass


class Condition(_Shape):
    field: str
    operator: str
    threshold: Any
    actual: Any
    result: bool
    words: str


class AlertEvent(_Shape):
    at: str
    actor: str
    action: str
    detail: dict[str, Any]


class AlertDetail(AlertItem):
    title: str
    explanation: list[Condition]
    history: list[AlertEvent]
