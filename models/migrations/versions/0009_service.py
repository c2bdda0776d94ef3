"""running as a service (scheduler lock and heartbeats)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:00:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
