"""Whether the schema is current is answered without alembic (a reading command's start-up,
issue 14 section 4), and the answer is alembic's."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from models.db import (
    SchemaNotCurrent,
    head_from_scripts,
    head_revision,
    make_engine,
    migrate,
    require_current,
)


def test_the_head_read_from_the_scripts_is_alembics():
    assert head_from_scripts() == head_revision()


def test_a_current_database_is_checked_without_importing_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'current.sqlite'}"
    migrate(make_engine(url))
    code = (
        "import sys; from models.db import make_engine, require_current; "
        f"require_current(make_engine({url!r})); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_database_behind_or_without_a_schema_is_not_current(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite'}"
    engine = make_engine(url)
    with pytest.raises(SchemaNotCurrent, match="has no schema"):
        require_current(engine)
    migrate(engine)
    require_current(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0009'"))
    with pytest.raises(SchemaNotCurrent, match="is at revision 0009; run `trauma-tracker init`"):
        require_current(engine)
    engine.dispose()
