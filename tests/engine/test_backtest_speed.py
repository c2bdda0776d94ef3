"""The backtest's one-sweep figures, on a generated force: at every daily step they equal
`engine.scoring.indicators.compute` for every person and figure, and the backtest over them opens
exactly the alerts (per rule, month and unit) that computing each step afresh opens."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from engine.evaluation import run_evaluation
from engine.ingest.batches import Ingestor
from engine.ingest.files import ingest_files
from engine.people.opt_out import opt_out
from engine.rules.backtest import backtest, step_times, stored_snapshots, swept_fields
from engine.rules.backtest_figures import SUPPORTED, DailyFigures
from engine.rules.pack import load_pack
from engine.scoring.criteria import load_criteria
from engine.scoring.indicators import compute
from models.db import make_engine, migrate
from tests.engine.rulekit import copy_rules
from trauma_tracker.settings import SHIPPED_RULES
from trauma_tracker.synthetic import generate_force

END = date(2025, 6, 30)
# Daily steps across the spring clock change, and a later stretch.
RANGES = ((date(2025, 3, 20), date(2025, 4, 8)), (date(2025, 6, 1), date(2025, 6, 30)))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("force")
    generate_force(folder, people=300, years=2, seed=5, end=END)
    return folder


@pytest.fixture
def force(database_url, generated):
    engine = make_engine(database_url)
    migrate(engine)
    reports = list(ingest_files(Ingestor(engine), [generated]))
    assert all(r.outcome in ("ok", "duplicate") for r in reports), [r.message for r in reports]
    criteria, text = load_criteria(SHIPPED_RULES)
    moment = step_times(END, END, "day")[0]
    run_evaluation(engine, criteria, text, as_of=moment, full=True, clock=lambda: moment)
    with engine.connect() as conn:
        somebody = sorted(compute(conn, moment))[7]
    opt_out(engine, somebody, actor="test")  # in no figure, at any step
    yield engine
    engine.dispose()


def test_swept_figures_equal_compute_at_every_daily_step(force):
    fields = sorted(SUPPORTED)
    compared = 0
    with force.connect() as conn:
        for first, last in RANGES:
            moments = step_times(first, last, "day")
            sweep = DailyFigures(conn, moments, fields)
            for moment, figures, _ in sweep.steps():
                expected = compute(conn, moment)
                swept = {sweep.staff[p]: {f: f_[f] for f in fields} for p, f_ in figures.items()}
                assert set(swept) == set(expected), moment
                for staff, mine in swept.items():
                    wanted = {f: expected[staff][f] for f in fields}
                    assert mine == wanted, (moment, staff)
                    # Same types too (an int count is not a float), as the rules see them.
                    assert [type(v) for v in mine.values()] == [type(v) for v in wanted.values()]
                compared += len(swept)
    assert compared > 40 * 250  # every person, every day of both ranges
    # The force has the figures' variety: the check above is not over zeros.
    with force.connect() as conn:
        last = compute(conn, step_times(END, END, "day")[0])
    for name in ("trauma_points_90d", "tier2plus_exposures_30d", "open_investigations"):
        assert any(person[name] for person in last.values()), name
    assert any(p["sickness_days_365d"] for p in last.values())
    assert any(p["cancelled_rest_days_90d"] for p in last.values())


def test_backtest_opens_the_same_alerts_as_computing_each_step(force):
    pack = load_pack(SHIPPED_RULES)
    assert swept_fields(pack) is not None  # the shipped pack goes through the sweep
    start, end = END - timedelta(days=59), END
    with force.connect() as conn:
        swept = backtest(conn, pack, start, end, step="day")
        afresh = backtest(conn, pack, start, end, step="day", snapshots=stored_snapshots)
    assert swept.steps == afresh.steps == 60
    assert swept.to_json() == afresh.to_json()
    assert swept.firings == afresh.firings
    assert sum(afresh.alerts.values()) > 0
    assert sum(bool(n) for n in afresh.alerts.values()) >= 2  # more than one rule opens


def test_weekly_steps_agree_and_unsupported_figures_are_refused(force):
    pack = load_pack(SHIPPED_RULES)
    start, end = END - timedelta(days=7 * 12), END
    with force.connect() as conn:
        swept = backtest(conn, pack, start, end, step="week")
        afresh = backtest(conn, pack, start, end, step="week", snapshots=stored_snapshots)
    assert swept.to_json() == afresh.to_json() and swept.firings == afresh.firings
    with pytest.raises(ValueError, match="deployments_30d"):
        DailyFigures(None, step_times(start, end, "week"), ["deployments_30d"])


@pytest.mark.parametrize(
    ("extra", "swept"),
    [
        ("    - deployments_30d >= 1\n", False),  # a figure the sweep does not work out
        ("    - role_group != 'nobody'\n    - staff_type in ['officer', 'staff']\n", True),  # text
    ],
)
def test_changed_packs_give_the_same_alerts_swept_or_step_by_step(force, tmp_path, extra, swept):
    rules = copy_rules(tmp_path / "rules")
    cluster = rules / "interventions" / "cluster.yaml"
    text = cluster.read_text()
    assert "    - tier2plus_exposures_30d >= 3\n" in text
    cluster.write_text(
        text.replace(
            "    - tier2plus_exposures_30d >= 3\n", f"    - tier2plus_exposures_30d >= 2\n{extra}"
        )
    )
    pack = load_pack(rules)
    assert (swept_fields(pack) is not None) is swept
    start, end = END - timedelta(days=29), END
    with force.connect() as conn:
        report = backtest(conn, pack, start, end, step="day")
        afresh = backtest(conn, pack, start, end, step="day", snapshots=stored_snapshots)
    assert report.to_json() == afresh.to_json() and report.steps == 30
    assert afresh.firings == report.firings
    assert afresh.alerts["cluster-30d"] > 0  # the changed rule opens alerts
