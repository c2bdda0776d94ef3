"""The web fixtures of part 1 (tests/web/conftest.py), for the oversight API's tests, and the
steering group, a persona part 1 has no page for."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.web.conftest import (  # noqa: F401
    PERSONAS,
    app,
    client,
    web_force,
    web_force_templates,
    web_rules,
)

# Issue 12's personas: part 1's, and a member of the steering group (roles come with sign-in).
OVERSIGHT_PERSONAS = {**PERSONAS, "steering": ("P210", ("steering",))}


@pytest.fixture
def oversight_force(web_force):  # noqa: F811
    """The web force, with a failed notification for the admin to retry."""
    with web_force.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE outbox SET status = 'failed', last_error = '550 mailbox unavailable' "
                "WHERE id = (SELECT MIN(id) FROM outbox)"
            )
        )
    return web_force
