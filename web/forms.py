"""The app's forms (Flask-WTF: each carries a CSRF token). Templates render them as GOV.UK
Frontend components through templates/macros/fields.html, which ties every error message to
its field and lists it in the error summary at the top of the page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from engine.alerts.lifecycle import OUTCOMES

NOTE_LIMIT = 500

# What a viewer may give as the reason for opening someone's record (CONTRACT section 5).
REASONS = (
    ("welfare_conversation", "A welfare conversation with them"),
    ("alert_review", "Reviewing an alert about them"),
    ("audit", "An audit"),
    ("other", "Something else (say what below)"),
)
REASON_LABELS = dict(REASONS)

OUTCOME_LABELS = {
    "support_offered": "Support offered",
    "referred": "Referred (Occupational Health, TRiM or other support)",
    "declined": "They declined support",
    "no_action_needed": "No action needed",
    "false_positive": "The alert was wrong (false positive)",
}
assert set(OUTCOME_LABELS) == set(OUTCOMES)

ROLE_LABELS = {
    "wellbeing": "Wellbeing team",
    "steering": "Trauma Steering Group",
    "leader": "Senior leader",
    "auditor": "Auditor",
    "admin": "Administrator",
}


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class DevLoginForm(FlaskForm):
    # Checked against the people feed by the view, so a typed id and a chosen one are alike.
    staff_id = RadioField(
        "Who are you signing in as?", validators=[Optional()], choices=[], validate_choice=False
    )
    other_staff_id = StringField(
        "Or type a staff id", validators=[Optional(), Length(max=40)], filters=[_strip]
    )
    roles = MultiCheckboxField(
        "Roles to hold (leave all unticked for an officer or supervisor)",
        choices=choices(ROLE_LABELS.items()),
        validate_choice=True,
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not self.other_staff_id.data and not self.staff_id.data:
            self.other_staff_id.errors = [
                *self.other_staff_id.errors,
                "Choose a person, or type a staff id",
            ]
            return False
        return valid

    def chosen_staff_id(self) -> str:
        return self.other_staff_id.data or self.staff_id.data


class ReasonForm(FlaskForm):
    """Why are you opening this person's record? Asked before it is shown, every time."""

    reason = RadioField(
        "Why are you looking at this record?",
        choices=choices(REASONS),
        validators=[InputRequired(message="Choose why you are looking at this record")],
    )
    note = TextAreaField(
        "Note",
        description="Required when the reason is something else. The person can read this.",
        validators=[Optional(), Length(max=NOTE_LIMIT)],
        filters=[_strip],
    )

    def validate(self, extra_validators=None) -> bool:
        # Not an inline validator: Optional() stops those for an empty note.
        valid = super().validate(extra_validators)
        if self.reason.data == "other" and not self.note.data:
            self.note.errors = [*self.note.errors, "Say why you are looking at this record"]
            return False
        return valid


class AcknowledgeForm(FlaskForm):
    """Acknowledging says 'I have seen this and will speak to them'."""


class ResolveForm(FlaskForm):
    outcome = RadioField(
        "What was the outcome?",
        choices=choices(OUTCOME_LABELS.items()),
        validators=[InputRequired(message="Choose the outcome of the conversation")],
    )
    note = TextAreaField(
        "Note (optional)",
        description="Keep it short. Do not record health details or incident details.",
        validators=[Optional(), Length(max=NOTE_LIMIT)],
        filters=[_strip],
    )


class ConfirmForm(FlaskForm):
    """A confirmation step: the button is the whole form (opt out, opt back in)."""


class ConversationForm(FlaskForm):
    to = RadioField(
        "Who would you like to talk to?",
        choices=choices([("supervisor", "My supervisor"), ("wellbeing", "The wellbeing team")]),
        validators=[DataRequired(message="Choose who you would like to talk to")],
    )
