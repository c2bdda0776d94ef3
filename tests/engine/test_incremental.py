"""On a generated force: day-by-day incremental evaluation equals a full rebuild, and the
windowed points agree exactly with DuckDB computing them straight from the CSV files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bench.feedsplit import changes_between, known_at
from engine.ingest.batches import Ingestor
from engine.ingest.feeds import FEEDS
from engine.ingest.files import ingest_files
from engine.people.opt_out import opt_out
from engine.scoring import indicators
from engine.scoring.criteria import load_criteria
from engine.scoring.indicators import WINDOWS
from engine.scoring.snapshots import snapshot_state
from tests.forcedata import Force, utc
from trauma_tracker.settings import SHIPPED_RULES
from trauma_tracker.synthetic import generate_force

END = date(2025, 6, 30)
START = datetime(2025, 6, 26, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("force")
    generate_force(folder, people=60, years=1, seed=3, end=END)
    return folder


def ingest(force: Force, folder: Path) -> None:
    reports = list(ingest_files(Ingestor(force.engine), [folder]))
    assert all(r.outcome in ("ok", "duplicate") for r in reports), [r.message for r in reports]


def test_day_by_day_incremental_equals_full(database_url, generated, tmp_path):
    force = Force(database_url)
    known_at(generated, tmp_path / "base", START)
    ingest(force, tmp_path / "base")
    first = force.evaluate(START)
    assert first.mode == "full" and first.exposures > 50

    somebody = sorted(snapshot_state(force.engine))[0]
    for day in range(1, 5):
        start, end = START + timedelta(days=day - 1), START + timedelta(days=day)
        assert changes_between(generated, tmp_path / f"day{day}", start, end) > 0
        ingest(force, tmp_path / f"day{day}")
        if day == 2:  # an opt-out on the way must not upset anything
            opt_out(force.engine, somebody, actor="test")
        report = force.evaluate(end)
        assert report.mode == "incremental"
        assert 0 < report.groups_rescored < report.exposures
        assert 0 < report.snapshots_written < report.people

    incremental_exposures = force.exposures()
    incremental_snapshots = snapshot_state(force.engine)
    full = force.evaluate(START + timedelta(days=4), full=True)
    assert full.mode == "full"
    assert force.exposures() == incremental_exposures
    assert snapshot_state(force.engine) == incremental_snapshots
    assert somebody not in incremental_snapshots
    force.close()


# Moments whose short windows reach back across a clock change (windows are N x 24 hours, not
# N calendar days in London), and the force's last moment; in the order they happen.
AGREEMENT_MOMENTS = ("2024-11-01T00:00:00Z", "2025-04-02T09:30:00Z", "2025-06-30T00:00:00Z")


def test_windowed_points_agree_exactly_with_duckdb_on_the_csv_files(
    database_url, generated, tmp_path
):
    """At each moment the tracker holds the feeds as known then (as it would have), and the
    oracle reads the whole folder, applying the moment itself."""
    pytest.importorskip("duckdb")
    from tests.duckdb_oracle import duckdb_points

    force = Force(database_url)
    compared = 0
    for n, moment in enumerate(AGREEMENT_MOMENTS):
        as_of = utc(moment)
        known_at(generated, tmp_path / f"known{n}", as_of)
        ingest(force, tmp_path / f"known{n}")
        force.evaluate(as_of)
        with force.engine.begin() as conn:
            ours = indicators.compute(conn, as_of)
        theirs = duckdb_points(generated, force.criteria, as_of, history_days=WINDOWS["5y"])
        for staff, figures in ours.items():
            analyst = theirs.get(staff, {})
            for window in WINDOWS:
                assert (
                    figures[f"trauma_points_{window}"],
                    figures[f"exposures_{window}"],
                ) == (
                    analyst.get(f"points_{window}", 0.0),
                    analyst.get(f"exposures_{window}", 0),
                ), (moment, staff, window)
            compared += bool(analyst)
    assert compared > 60  # most people have exposures: the comparison is not vacuous
    force.close()


def test_the_oracle_applies_the_moment_before_pairing_records(tmp_path):
    """A sudden death attended at 23:50 (tier 1) and, 25 minutes after the evaluation moment,
    an officer in charge of its linked occurrence, a child's homicide (tier 3): at the moment
    only the deployment exists, so it is the exposure; the later record can't win the pair
    and take the deployment out of the window with it."""
    pytest.importorskip("duckdb")
    from tests.duckdb_oracle import duckdb_points

    files = {
        "cc_incidents": "CC1,2025-10-31T23:40:00Z,,,SUDDEN_DEATH,,I,",
        "cc_deployments": "CC1,S1,attending,2025-10-31T23:50:00Z,",
        "rms_occurrences": "RM1,2025-11-01T00:10:00Z,1/1,CHILD,,open,,CC1,",
        "rms_involvements": "RM1,S1,oic,2025-11-01T00:25:00Z,",
    }
    for feed, row in files.items():
        header = ",".join(FEEDS[feed].columns)
        (tmp_path / f"{feed}_2025.csv").write_text(f"{header}\n{row}\n")
    criteria, _ = load_criteria(SHIPPED_RULES)
    before = duckdb_points(tmp_path, criteria, utc("2025-11-01T00:00:00Z"), WINDOWS["5y"])
    assert (before["S1"]["points_7d"], before["S1"]["exposures_7d"]) == (1.0, 1)
    after = duckdb_points(tmp_path, criteria, utc("2025-11-01T01:00:00Z"), WINDOWS["5y"])
    assert (after["S1"]["points_7d"], after["S1"]["exposures_7d"]) == (3.0, 1)  # one pair
