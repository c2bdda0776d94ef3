"""The synthetic force: deterministic, valid per the feed contract, realistic, and honest
about the faults it injects in dirty mode."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from engine.ingest.feeds import FEEDS, Reject, compile_validator, feed_for_filename
from engine.scoring.criteria import load_criteria
from engine.sqltime import LONDON
from trauma_tracker.settings import SHIPPED_RULES
from trauma_tracker.synthetic import generate_force, rates
from trauma_tracker.synthetic.pipeline import can_fork

END = date(2025, 4, 1)
FEED_FILES = ("*.csv", "*.ndjson")


# -- reading what was written ---------------------------------------------------------------


def read_rows(path: Path) -> tuple[list[str], list[list]]:
    """(columns, rows) of a feed file, rows as lists in column order."""
    feed = FEEDS[feed_for_filename(path.name)]
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        return rows[0], rows[1:]
    columns = list(feed.columns)
    with open(path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return columns, [[r.get(c, "") for c in columns] for r in records]


def feed_rows(folder: Path, feed: str) -> list[dict]:
    out = []
    for path in sorted(folder.iterdir()):
        if feed_for_filename(path.name) == feed and path.suffix in (".csv", ".ndjson"):
            columns, rows = read_rows(path)
            out.extend(dict(zip(columns, row, strict=True)) for row in rows)
    return out


def day(text: str) -> date:
    return date.fromisoformat(text[:10])


class Employment:
    """Who was employed when, from people.csv."""

    def __init__(self, people: list[dict]) -> None:
        self.start = {p["staff_id"]: day(p["service_start"]) for p in people}
        self.leave = {
            p["staff_id"]: day(p["leave_date"]) if p["leave_date"] else None for p in people
        }
        self.versions = defaultdict(list)
        for p in people:
            self.versions[p["staff_id"]].append(p)
        for versions in self.versions.values():
            versions.sort(key=lambda v: v["valid_from"])

    def employed(self, staff_id: str, on: date) -> bool:
        leave = self.leave[staff_id]
        return self.start[staff_id] <= on and (leave is None or on <= leave)

    def version(self, staff_id: str, on: date) -> dict:
        current = None
        for v in self.versions[staff_id]:
            if day(v["valid_from"]) <= on:
                current = v
        assert current is not None, f"{staff_id} has no version on {on}"
        return current

    def years(self, staff_type: str, start: date, end: date) -> float:
        """Person-years employed inside [start, end) for one staff type."""
        total = 0
        for staff_id, versions in self.versions.items():
            if versions[0]["staff_type"] != staff_type:
                continue
            first = max(self.start[staff_id], start)
            last = min(self.leave[staff_id] or end, end - timedelta(days=1))
            total += max(0, (last - first).days + 1)
        return total / 365.25


# -- forces, generated once per module ------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate_force(out, people=300, years=1.5, seed=7, end=END)
    return out


@pytest.fixture(scope="module")
def medium(tmp_path_factory) -> Path:
    """Big enough for rates to settle: ~1,300 people (~700 officers) over a year."""
    out = tmp_path_factory.mktemp("medium")
    generate_force(out, people=1_300, years=1, seed=3, end=END)
    return out


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dirty")
    generate_force(out, people=250, years=1, seed=11, dirty=True, end=END)
    return out


def manifest(folder: Path) -> dict:
    return json.loads((folder / "MANIFEST.json").read_text())


def period(m: dict) -> tuple[date, date]:
    """The period as [start, end): from the first day to the day after the last."""
    last = date.fromisoformat(m["period"]["last_day"])
    return date.fromisoformat(m["period"]["first_day"]), last + timedelta(days=1)


# -- determinism ----------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_arguments_give_identical_bytes_and_another_seed_differs(tmp_path):
    args = {"people": 120, "years": 0.5, "end": END}
    generate_force(tmp_path / "a", seed=5, **args)
    generate_force(tmp_path / "b", seed=5, **args)
    generate_force(tmp_path / "c", seed=6, **args)
    first, again, other = (snapshot(tmp_path / x) for x in "abc")
    assert first == again
    assert first["people.csv"] != other["people.csv"]
    incidents = sorted(n for n in first if n.startswith("cc_incidents"))
    assert incidents and all(first[n] != other.get(n) for n in incidents)


@pytest.mark.skipif(not can_fork(), reason="the two-process run needs fork")
def test_two_processes_write_the_same_bytes_as_one(tmp_path):
    args = {"people": 150, "years": 1.2, "seed": 9, "end": END, "dirty": True}
    one = generate_force(tmp_path / "one", parallel=False, **args)
    two = generate_force(tmp_path / "two", parallel=True, **args)
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")
    assert one == two and len(one["faults"]) >= 10


def test_dirty_mode_changes_only_the_recorded_lines(tmp_path):
    generate_force(tmp_path / "clean", people=120, years=0.5, seed=5, end=END)
    summary = generate_force(tmp_path / "dirty", people=120, years=0.5, seed=5, end=END, dirty=True)
    clean, spoilt = snapshot(tmp_path / "clean"), snapshot(tmp_path / "dirty")
    touched = {f["file"] for f in summary["faults"]}
    for name, data in clean.items():
        if name not in touched and name != "MANIFEST.json":
            assert spoilt[name] == data, name


# -- the contract ---------------------------------------------------------------------------


def assert_every_row_valid(folder: Path) -> int:
    checked = 0
    for path in sorted(folder.iterdir()):
        if path.name == "MANIFEST.json":
            continue
        feed = FEEDS[feed_for_filename(path.name)]
        columns, rows = read_rows(path)
        assert tuple(columns) == feed.columns, path.name
        validate = compile_validator(feed, columns)
        for line, row in enumerate(rows, 2):
            result = validate(line, row)
            assert not isinstance(result, Reject), f"{path.name}:{line}: {result.reason}"
            checked += 1
    return checked


def test_every_clean_row_passes_its_feed_validator(small):
    assert assert_every_row_valid(small) > 10_000
    names = {p.name for p in small.iterdir()}
    assert {"units.csv", "people.csv", "MANIFEST.json"} <= names
    for feed in ("cc_incidents", "cc_deployments", "rms_occurrences", "rms_involvements"):
        assert {f"{feed}_2023.csv", f"{feed}_2024.csv", f"{feed}_2025.csv"} <= names
    assert manifest(small)["faults"] == []


def test_manifest_counts_match_the_files(small):
    m = manifest(small)
    for name, count in m["files"].items():
        assert len(read_rows(small / name)[1]) == count, name
    assert sum(m["files"].values()) == sum(m["counts"].values())
    assert m["parameters"] == {
        "people": 300,
        "years": 1.5,
        "seed": 7,
        "dirty": False,
        "end": "2025-04-01",
        "format": "csv",
    }


def test_ndjson_holds_the_same_records_with_lists_and_numbers(tmp_path):
    args = {"people": 120, "years": 0.5, "seed": 5, "end": END}
    generate_force(tmp_path / "csv", **args)
    generate_force(tmp_path / "json", fmt="ndjson", **args)
    assert_every_row_valid(tmp_path / "json")
    for path in sorted((tmp_path / "csv").glob("*.csv")):
        twin = tmp_path / "json" / (path.stem + ".ndjson")
        assert read_rows(path)[1] == [
            [
                "|".join(v)
                if isinstance(v, list)
                else (f"{v:g}" if isinstance(v, int | float) else v)
                for v in row
            ]
            for row in read_rows(twin)[1]
        ], path.name
    lines = (tmp_path / "json" / "absences_2025.ndjson").read_text().splitlines()
    record = json.loads(lines[0])
    assert isinstance(record["working_days_lost"], int | float)
    flagged = [
        json.loads(line)
        for line in (tmp_path / "json")
        .joinpath("cc_incidents_2025.ndjson")
        .read_text()
        .splitlines()
    ]
    assert any(isinstance(r.get("qualifiers"), list) for r in flagged)
    assert all("" not in r.values() for r in flagged)  # empty values are omitted


# -- rates ----------------------------------------------------------------------------------


def test_incident_crime_and_sickness_rates_match_the_published_figures(medium):
    people = feed_rows(medium, "people")
    jobs = Employment(people)
    m = manifest(medium)
    start, end = period(m)
    officer_years = jobs.years("officer", start, end)
    assert officer_years > 500

    incidents = len(feed_rows(medium, "cc_incidents"))
    per_officer = incidents / officer_years
    assert per_officer == pytest.approx(190_000 / 3_300, rel=0.15)
    crimes = len(feed_rows(medium, "rms_occurrences"))
    assert crimes / officer_years == pytest.approx(130_000 / 3_300, rel=0.15)

    officers = {p["staff_id"] for p in people if p["staff_type"] == "officer"}
    sick = [
        a
        for a in feed_rows(medium, "absences")
        if a["staff_id"] in officers and a["absence_type"] in ("sickness", "injury_on_duty")
    ]
    days_lost = sum(float(a["working_days_lost"]) for a in sick)
    assert days_lost / officer_years == pytest.approx(9, rel=0.25)
    psychological = sum(
        float(a["working_days_lost"]) for a in sick if a["reason_group"] == "psychological"
    )
    assert psychological / days_lost == pytest.approx(0.47, abs=0.10)


def test_armed_operations_and_tier_3_incidents_follow_the_national_figures(medium):
    """Firearms operations from the Home Office statistics, and the incidents the shipped
    criteria put at tier 3 (which start TRiM checks) from the sourced rates, per officer."""
    people = feed_rows(medium, "people")
    start, end = period(manifest(medium))
    officer_years = Employment(people).years("officer", start, end)
    incidents = feed_rows(medium, "cc_incidents")
    qualifiers = Counter(q for i in incidents for q in i["qualifiers"].split("|") if q)
    operations = rates.EW_FIREARMS_OPERATIONS_PER_YEAR / rates.EW_OFFICERS * officer_years
    assert qualifiers["FIREARM"] == pytest.approx(operations, rel=0.25)
    # A discharge only ever follows an armed operation (~1 in 1,500 of them).
    discharged = [i["qualifiers"].split("|") for i in incidents if "DISCHARGE" in i["qualifiers"]]
    assert all("FIREARM" in q for q in discharged)
    assert rates.AS_FIREARMS_OPERATIONS_PER_YEAR * rates.DISCHARGE_PER_FIREARMS_OPERATION < 1

    criteria, _ = load_criteria(SHIPPED_RULES)
    tier3 = Counter()
    for incident in incidents:
        found = criteria.category_of("cc_incidents", incident)
        if found is not None and found.tier == 3:
            tier3[found.id] += 1
    per_as_year = 3_300 / officer_years  # from this force to an A&S-sized one, a year
    child_assaults = (
        rates.INCIDENT_TYPES["SERIOUS_ASSAULT"].share
        * dict(rates.QUALIFIERS["SERIOUS_ASSAULT"])["CHILD"]
        * rates.AS_INCIDENTS_PER_YEAR
    )
    expected = rates.AS_CHILD_DEATHS_ATTENDED_PER_YEAR + child_assaults
    assert tier3["child_death"] * per_as_year == pytest.approx(expected, rel=0.4)
    threatened = sum(
        rates.INCIDENT_TYPES[code].share * dict(q).get("OFFICER_THREATENED", 0)
        for code, q in rates.QUALIFIERS.items()
    )
    expected = threatened * rates.AS_INCIDENTS_PER_YEAR
    assert tier3["threat_to_life"] * per_as_year == pytest.approx(expected, rel=0.4)
    # Routine armed operations are no TRiM trigger: tier-3 incidents are a few in a thousand
    # of the force's serious ones, and far fewer than its armed operations.
    assert sum(tier3.values()) < qualifiers["FIREARM"]


def test_nothing_is_dated_after_the_end_in_london(medium):
    """END is in British Summer Time: its last hour is 23:00-24:00 London, 22:00-23:00 UTC.
    Every moment lies before midnight London time, and the data reaches that last hour."""
    last_day = date.fromisoformat(manifest(medium)["period"]["last_day"])
    midnight = datetime.combine(last_day + timedelta(days=1), time(), LONDON).astimezone(UTC)
    assert midnight.hour == 23  # the test is about the summer hour
    latest = datetime.min.replace(tzinfo=UTC)
    for feed in ("cc_incidents", "cc_deployments", "rms_occurrences", "rms_involvements"):
        for row in feed_rows(medium, feed):
            for name, value in row.items():
                if value and name.endswith(("_at", "_on")):
                    moment = datetime.fromisoformat(value)
                    assert moment < midnight, (feed, name, value)
                    latest = max(latest, moment)
    assert latest >= midnight - timedelta(hours=1)
    for row in feed_rows(medium, "absences"):
        assert date.fromisoformat(row["start_date"]) <= last_day
    for row in feed_rows(medium, "rest_day_cancellations"):
        assert date.fromisoformat(row["notified_on"]) <= last_day


def test_workforce_mix_is_like_avon_and_somerset(medium):
    first = {}
    for p in feed_rows(medium, "people"):
        first.setdefault(p["staff_id"], p)
    types = Counter(p["staff_type"] for p in first.values())
    total = sum(types.values())
    assert 0.45 < types["officer"] / total < 0.60
    assert 0.33 < types["staff"] / total < 0.47
    assert types["pcso"] > 0 and types["special"] > 0
    roles = Counter(p["role_group"] for p in first.values())
    for role in (
        "response",
        "neighbourhood",
        "roads_policing",
        "cid",
        "child_protection_online_abuse",
        "firearms",
        "control_room",
        "custody",
        "staff_admin",
        "staff_investigation",
    ):
        assert roles[role] > 0, role
    assert all(r == r.lower() and " " not in r for r in roles)


def test_incidents_are_mostly_routine_with_rare_traumatic_codes(medium):
    incidents = feed_rows(medium, "cc_incidents")
    codes = Counter(i["closing_code"] for i in incidents)
    traumatic = ("SUDDEN_DEATH", "RTC_FATAL", "SUICIDE", "SERIOUS_ASSAULT")
    for code in (*traumatic, "CONCERN_FOR_WELFARE", "MISSING_PERSON", "DOMESTIC", "ASB", "ADMIN"):
        assert codes[code] > 0, code
    assert sum(codes[c] for c in traumatic) / len(incidents) < 0.05
    routine = ("ASB", "THEFT", "BURGLARY", "RTC_DAMAGE", "SUSPICIOUS", "ALARM", "ADMIN")
    assert sum(codes[c] for c in routine) > 4 * sum(codes[c] for c in traumatic)
    qualifiers = Counter(q for i in incidents for q in i["qualifiers"].split("|") if q)
    for q in ("CHILD", "KNIFE", "FIREARM", "OFFICER_INJURED"):
        assert 0 < qualifiers[q] < 0.1 * len(incidents), q
    assert all(i["opening_code"] for i in incidents)
    assert 0 < sum(i["opening_code"] != i["closing_code"] for i in incidents) < len(incidents) / 4


def test_response_officers_attend_a_few_incidents_a_shift(medium):
    people = feed_rows(medium, "people")
    jobs = Employment(people)
    deployments = feed_rows(medium, "cc_deployments")
    per_person = Counter(
        d["staff_id"]
        for d in deployments
        if d["role"] == "first_on_scene" or d["role"] == "attending"
    )
    constables = {
        p["staff_id"]
        for p in people
        if p["role_group"] == "response" and p["rank_or_grade"] == "Constable"
    }
    m = manifest(medium)
    start, end = period(m)
    years = sum(
        (min(jobs.leave[s] or end, end) - max(jobs.start[s], start)).days / 365.25
        for s in constables
    )
    # A four-on, four-off pattern is ~180 shifts a year; leave, training and sickness leave
    # about 150 on the streets.
    per_shift = sum(per_person[s] for s in constables) / years / 150
    assert 1.2 < per_shift < 4
    roles = Counter(d["role"] for d in deployments)
    assert set(roles) == {"first_on_scene", "attending", "supervisor", "call_handler", "dispatcher"}
    control = {p["staff_id"] for p in people if p["role_group"] == "control_room"}
    assert all(
        d["staff_id"] in control for d in deployments if d["role"] in ("call_handler", "dispatcher")
    )


def test_crimes_link_to_incidents_and_investigations_open_and_close(medium):
    incidents = {i["incident_urn"] for i in feed_rows(medium, "cc_incidents")}
    crimes = feed_rows(medium, "rms_occurrences")
    linked = [c for c in crimes if c["linked_incident_urn"]]
    assert 0.3 < len(linked) / len(crimes) < 0.7
    assert all(c["linked_incident_urn"] in incidents for c in linked)
    codes = Counter(c["hocr_code"] for c in crimes)
    assert codes["1/1"] + codes["4/1"] > 0  # homicide is rare but present in a year
    assert codes["1/1"] < 0.001 * len(crimes)
    closed = [c for c in crimes if c["status"] == "closed"]
    still_open = [c for c in crimes if c["status"] == "open"]
    assert closed and still_open
    assert all(c["closed_at"] >= c["reported_at"] for c in closed)
    assert not any(c["closed_at"] for c in still_open)
    flags = Counter(f for c in crimes for f in c["crime_flags"].split("|") if f)
    assert flags["DOMESTIC"] > 0 and flags["CHILD"] > 0

    images = {c["occurrence_ref"]: c for c in crimes if c["iioc_category"]}
    assert images and {c["iioc_category"] for c in images.values()} == {"A", "B", "C"}
    involvements = feed_rows(medium, "rms_involvements")
    reviewed = {i["occurrence_ref"] for i in involvements if i["role"] == "image_reviewer"}
    assert reviewed and reviewed <= set(images)
    roles = Counter(i["role"] for i in involvements)
    assert set(roles) == {
        "oic",
        "investigator",
        "attending",
        "interviewer",
        "image_reviewer",
        "family_liaison",
        "other",
    }
    assert all(
        not i["unassigned_at"] or i["unassigned_at"] >= i["assigned_at"] for i in involvements
    )
    with_oic = {i["occurrence_ref"] for i in involvements if i["role"] == "oic"}
    assert len(with_oic) > 0.95 * len(crimes)


def test_rest_days_are_cancelled_with_notice_some_short_some_reinstated(medium):
    cancellations = feed_rows(medium, "rest_day_cancellations")
    notice = [(day(c["rest_day"]) - day(c["notified_on"])).days for c in cancellations]
    assert min(notice) >= 1
    short = sum(n < 15 for n in notice) / len(notice)
    assert 0.1 < short < 0.5
    statuses = Counter(c["status"] for c in cancellations)
    assert 0 < statuses["reinstated"] < statuses["cancelled"]
    officers = {p["staff_id"] for p in feed_rows(medium, "people") if p["staff_type"] == "officer"}
    assert {c["staff_id"] for c in cancellations} <= officers


def test_absences_include_ongoing_spells_and_injuries_on_duty(medium):
    absences = feed_rows(medium, "absences")
    kinds = Counter(a["absence_type"] for a in absences)
    assert kinds["sickness"] > kinds["injury_on_duty"] > 0 and kinds["other"] > 0
    ongoing = [a for a in absences if not a["end_date"]]
    assert ongoing and len(ongoing) < 0.2 * len(absences)
    assert all(a["end_date"] >= a["start_date"] for a in absences if a["end_date"])
    reasons = {a["reason_group"] for a in absences if a["absence_type"] == "sickness"}
    assert reasons == {
        "psychological",
        "musculoskeletal",
        "respiratory",
        "gastrointestinal",
        "injury",
        "other",
    }


# -- structure and people -------------------------------------------------------------------


def test_units_form_one_tree_and_people_sit_in_teams(small):
    units = {u["unit_id"]: u for u in feed_rows(small, "units")}
    roots = [u for u in units.values() if not u["parent_id"]]
    assert [r["level"] for r in roots] == ["force"]
    for unit in units.values():
        seen = set()
        while unit["parent_id"]:  # every chain ends at the force, without loops
            assert unit["unit_id"] not in seen
            seen.add(unit["unit_id"])
            unit = units[unit["parent_id"]]
        assert unit["level"] == "force"
    levels = Counter(u["level"] for u in units.values())
    assert 3 <= levels["area"] <= 5 and 3 <= levels["command"] <= 5 and levels["department"] > 5
    people = feed_rows(small, "people")
    assert all(units[p["unit_id"]]["level"] == "team" for p in people)


def test_supervisors_exist_are_employed_and_form_a_chain(small):
    people = feed_rows(small, "people")
    jobs = Employment(people)
    start, _ = period(manifest(small))
    chiefs = 0
    for p in people:
        boss = p["supervisor_id"]
        if not boss:
            chiefs += 1
            assert p["rank_or_grade"] == "Chief Constable"
            continue
        on = day(p["valid_from"])
        assert jobs.employed(boss, on), f"{p['staff_id']} reports to {boss}, not employed {on}"
        boss_rank = jobs.version(boss, on)["rank_or_grade"]
        if p["rank_or_grade"] in ("Sergeant", "Detective Sergeant"):
            assert boss_rank in ("Inspector", "Detective Inspector"), (p, boss_rank)
        if p["rank_or_grade"] in ("Constable", "Detective Constable", "PCSO"):
            assert boss_rank in ("Sergeant", "Detective Sergeant")
    assert chiefs == 1
    for staff_id, versions in jobs.versions.items():
        firsts = [day(v["valid_from"]) for v in versions]
        assert firsts == sorted(set(firsts)), staff_id
        assert firsts[0] == max(jobs.start[staff_id], start)
        assert len({(v["service_start"], v["leave_date"], v["staff_type"]) for v in versions}) == 1


def test_people_join_leave_and_change_supervisor(small):
    people = feed_rows(small, "people")
    jobs = Employment(people)
    start, _ = period(manifest(small))
    joiners = [s for s, d in jobs.start.items() if d >= start]
    leavers = [s for s, d in jobs.leave.items() if d is not None]
    assert joiners and leavers
    moved = [s for s, v in jobs.versions.items() if len({x["supervisor_id"] for x in v}) > 1]
    assert len(moved) > 0.1 * len(jobs.versions)
    assert any(len({x["unit_id"] for x in v}) > 1 for v in jobs.versions.values())
    assert len(set(jobs.start)) > 300  # leavers replaced: more people than posts over time


def test_nobody_works_outside_their_employment(small):
    jobs = Employment(feed_rows(small, "people"))
    for d in feed_rows(small, "cc_deployments"):
        assert jobs.employed(d["staff_id"], day(d["arrived_at"])), d
    for i in feed_rows(small, "rms_involvements"):
        assert jobs.employed(i["staff_id"], day(i["assigned_at"])), i
        if i["unassigned_at"]:
            assert jobs.employed(i["staff_id"], day(i["unassigned_at"])), i
    for c in feed_rows(small, "rest_day_cancellations"):
        assert jobs.employed(c["staff_id"], day(c["notified_on"])), c
        assert jobs.employed(c["staff_id"], day(c["rest_day"])), c
    for a in feed_rows(small, "absences"):
        assert jobs.employed(a["staff_id"], day(a["start_date"])), a


def test_nobody_is_deployed_while_off_sick(small):
    off = defaultdict(list)
    for a in feed_rows(small, "absences"):
        off[a["staff_id"]].append(
            (day(a["start_date"]), day(a["end_date"]) if a["end_date"] else END)
        )
    for d in feed_rows(small, "cc_deployments"):
        on = day(d["arrived_at"])
        assert not any(a <= on <= b for a, b in off[d["staff_id"]]), d


def test_tiny_and_invalid_forces(tmp_path):
    summary = generate_force(tmp_path / "tiny", people=10, years=0.2, end=END)
    assert summary["counts"]["people"] >= 10
    assert_every_row_valid(tmp_path / "tiny")
    with pytest.raises(ValueError, match="people"):
        generate_force(tmp_path / "none", people=5, end=END)
    with pytest.raises(ValueError, match="format"):
        generate_force(tmp_path / "xml", people=50, fmt="xml", end=END)


def test_rates_are_derived_from_the_published_anchors():
    assert pytest.approx(190_000 / 3_300) == rates.INCIDENTS_PER_OFFICER_YEAR
    assert pytest.approx(130_000 / 3_300) == rates.CRIMES_PER_OFFICER_YEAR
    fatal_collisions = rates.INCIDENT_TYPES["RTC_FATAL"].share * rates.AS_INCIDENTS_PER_YEAR
    assert fatal_collisions * rates.DEATHS_PER_FATAL_COLLISION == pytest.approx(44)
    assert sum(t.share for t in rates.INCIDENT_TYPES.values()) == pytest.approx(1.0)
    assert rates.SICKNESS_REASONS["psychological"].days == 0.47
    # The rare events: national counts shared out per officer or per head.
    assert pytest.approx(18_400 * 3_300 / 147_000) == rates.AS_FIREARMS_OPERATIONS_PER_YEAR
    assert pytest.approx(3_200 * 1.8 / 57.7 * 0.33) == rates.AS_CHILD_DEATHS_ATTENDED_PER_YEAR
    homicides = rates.INCIDENT_TYPES["SUDDEN_DEATH"].share * rates.AS_INCIDENTS_PER_YEAR
    assert homicides * rates.INCIDENT_TYPES["SUDDEN_DEATH"].crime == pytest.approx(590 * 1.8 / 60.9)


# -- dirty mode -----------------------------------------------------------------------------


def physical_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def test_dirty_manifest_points_at_each_fault(dirty):
    faults = manifest(dirty)["faults"]
    kinds = Counter(f["kind"] for f in faults)
    assert kinds["truncated"] == 1
    for kind in ("bad_date", "unknown_code", "duplicate", "unknown_staff"):
        assert kinds[kind] >= 2, kind
    staff = {p["staff_id"] for p in feed_rows(dirty, "people")}
    for fault in faults:
        path = dirty / fault["file"]
        feed = FEEDS[feed_for_filename(path.name)]
        lines = physical_lines(path)
        text = lines[fault["line"] - 1]
        row = next(csv.reader([text]))
        result = compile_validator(feed, feed.columns)(fault["line"], row)
        if fault["kind"] in ("bad_date", "unknown_code", "truncated"):
            assert isinstance(result, Reject), fault
            assert result.field == fault["field"], (fault, result)
        elif fault["kind"] == "duplicate":
            assert text == lines[fault["line"] - 2], fault
        else:
            assert fault["field"] == "staff_id"
            assert row[feed.columns.index("staff_id")] not in staff, fault


def test_dirty_rows_other_than_the_recorded_ones_are_valid(dirty):
    recorded = {(f["file"], f["line"]) for f in manifest(dirty)["faults"]}
    for path in sorted(dirty.glob("*.csv")):
        feed = FEEDS[feed_for_filename(path.name)]
        validate = compile_validator(feed, feed.columns)
        with open(path, encoding="utf-8", newline="") as handle:
            for line, row in enumerate(csv.reader(handle), 1):
                if line == 1:
                    continue
                if isinstance(validate(line, row), Reject):
                    assert (path.name, line) in recorded, (path.name, line)


def test_the_truncated_file_ends_mid_row(dirty):
    [cut] = [f for f in manifest(dirty)["faults"] if f["kind"] == "truncated"]
    path = dirty / cut["file"]
    data = path.read_text(encoding="utf-8")
    assert not data.endswith("\n")
    lines = data.split("\n")
    assert len(lines) == cut["line"]
    header = lines[0].split(",")
    assert len(lines[-1].split(",")) < len(header) and len(lines[-2].split(",")) == len(header)


def test_dirty_ndjson_lines_are_counted_from_the_first_record(tmp_path):
    summary = generate_force(
        tmp_path, people=150, years=0.5, seed=2, dirty=True, end=END, fmt="ndjson"
    )
    for fault in summary["faults"]:
        lines = physical_lines(tmp_path / fault["file"])
        text = lines[fault["line"] - 1]
        if fault["kind"] == "truncated":
            assert fault["line"] == len(lines)
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)
        elif fault["kind"] == "duplicate":
            assert text == lines[fault["line"] - 2]
        else:
            assert fault["field"] in json.loads(text)
