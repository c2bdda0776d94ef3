"""A generated force with realistic faults: ingest finds every fault, at its line, and no more."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date

import pytest
import sqlalchemy as sa

from engine.ingest.batches import Ingestor
from engine.ingest.csv_columns import Staged
from engine.ingest.files import ingest_files
from models import HeldRow, table_of
from models.db import make_engine, migrate
from tests.feedfiles import database_state
from trauma_tracker.synthetic import generate_force

REJECTED_KINDS = {"bad_date", "unknown_code", "truncated"}


@pytest.fixture(scope="module")
def dirty_force(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dirty")
    generate_force(folder, people=150, years=1, seed=7, dirty=True, end=date(2025, 6, 30))
    return folder, json.loads((folder / "MANIFEST.json").read_text())["faults"]


@pytest.mark.parametrize("fast_csv", [True, False], ids=["polars lane", "python lane"])
def test_every_injected_fault_is_reported_where_it_is(database_url, dirty_force, fast_csv):
    folder, faults = dirty_force
    assert {f["kind"] for f in faults} >= REJECTED_KINDS | {"duplicate", "unknown_staff"}
    engine = make_engine(database_url)
    migrate(engine)

    reports = {r.path: r for r in ingest_files(Ingestor(engine, fast_csv=fast_csv), [folder])}

    assert {r.outcome for r in reports.values()} == {"ok"}  # no file fails whole
    expected = defaultdict(set)
    duplicates = Counter()
    for fault in faults:
        if fault["kind"] in REJECTED_KINDS:
            expected[fault["file"]].add((fault["line"], fault["field"]))
        elif fault["kind"] == "duplicate":
            duplicates[fault["file"]] += 1
    for path, report in reports.items():
        name = path.rsplit("/", 1)[-1]
        assert {(r.line, r.field) for r in report.rejects} == expected[name], name
        assert report.duplicates == duplicates[name], name

    with engine.connect() as conn:
        held = {
            (row.source.rsplit("/", 1)[-1], row.line, row.staff_id)
            for row in conn.execute(sa.select(table_of(HeldRow)))
        }
    unknown = [f for f in faults if f["kind"] == "unknown_staff"]
    assert {(f["file"], f["line"]) for f in unknown} == {(f, line) for f, line, _ in held}
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_both_lanes_store_the_same(kind, dirty_force, request, tmp_path):
    folder, _ = dirty_force
    states = []
    for fast_csv in (True, False):
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / f'lane-{fast_csv}.sqlite'}"
        else:
            url = request.getfixturevalue("new_postgres_schema")()
        engine = make_engine(url)
        migrate(engine)
        list(ingest_files(Ingestor(engine, fast_csv=fast_csv), [folder]))
        states.append(database_state(engine))
        engine.dispose()
    assert states[0] == states[1]
    assert len(states[0]["cc_deployments"]) > 1000


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_files_worked_on_at_once_store_what_one_by_one_does(
    kind, dirty_force, request, tmp_path, monkeypatch
):
    """`--jobs` changes nothing but speed: the same state, the reports in the same order,
    and a later file of a feed still wins over an earlier one. PostgreSQL stores feeds side
    by side; SQLite stores one file while other processes prepare the next."""
    folder, _ = dirty_force

    def fresh_url(jobs: int) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'jobs-{jobs}.sqlite'}"
        return request.getfixturevalue("new_postgres_schema")()

    first = sorted(folder.glob("cc_incidents_*.csv"))[0]
    header, row = first.read_text().splitlines()[:2]
    fields = dict(zip(header.split(","), row.split(","), strict=True))
    corrected = {**fields, "closing_code": "SUDDEN_DEATH", "qualifiers": ""}
    assert corrected != fields
    # Named to sort after the force's own incident files, so it is stored after them.
    correction = tmp_path / "cc_incidents_zz_correction.csv"
    correction.write_text(header + "\n" + ",".join(corrected[c] for c in header.split(",")) + "\n")

    staged = []  # files stored from what another process prepared
    staged_chunks = Staged.chunks
    monkeypatch.setattr(
        Staged,
        "chunks",
        lambda prepared, *args: staged.append(prepared.source) or staged_chunks(prepared, *args),
    )
    states, orders = [], []
    for jobs in (1, 3):
        engine = make_engine(fresh_url(jobs))
        migrate(engine)
        reports = list(
            ingest_files(Ingestor(engine), [folder, correction], jobs=jobs, prepare_ahead=True)
        )
        orders.append([(r.path, r.outcome, r.accepted, r.rejected, r.held) for r in reports])
        states.append(database_state(engine))
        with engine.connect() as conn:
            code = conn.execute(
                sa.text("SELECT closing_code FROM cc_incidents WHERE incident_urn = :urn"),
                {"urn": fields["incident_urn"]},
            ).scalar_one()
        engine.dispose()
        assert code == "SUDDEN_DEATH", jobs
    assert orders[0] == orders[1]
    assert states[0] == states[1]
    if kind == "sqlite":
        # Every CSV file but units and people (stored first, one by one) was staged.
        assert set(staged) == {
            str(path)
            for path in folder.glob("*.csv")
            if not path.name.startswith(("units", "people"))
        } | {str(correction)}
    else:
        assert staged == []  # PostgreSQL COPYs instead
    assert len({path.rsplit("_", 1)[0] for path, *_ in orders[0]}) > 3  # several feeds
