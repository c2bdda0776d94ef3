"""Disclosure control: no suppressed cell can be worked out from the published ones.

The attacker here works from the people themselves, not from the suppression's graph: every
unit's own head count is an unknown; each published cell (any level, and the force total) is
a known sum of them; and, the worst case, so is the remainder of each cell divided into finer
ones (its people in none of them). A suppressed cell is recovered when its sum lies in the
span of the known sums: the subtraction of row, column and grand totals is one such
combination. It must never be.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.oversight.disclosure import FORCE, RANK, THRESHOLD, Hierarchy, UnitNode, suppress


def build(units: list[UnitNode], heads: dict[str, int]) -> Hierarchy:
    hierarchy = Hierarchy.build(units)
    for unit_id, count in heads.items():
        for cell in hierarchy.cells_of(unit_id):
            hierarchy.cells[cell].people += count
    suppress(hierarchy)
    return hierarchy


def in_span(rows: list[dict[str, Fraction]], target: dict[str, Fraction]) -> bool:
    """Whether `target` is a linear combination of `rows` (exact arithmetic)."""
    pivots: list[tuple[str, dict[str, Fraction]]] = []

    def reduce(vector: dict[str, Fraction]) -> dict[str, Fraction]:
        vector = dict(vector)
        for column, pivot in pivots:
            factor = vector.get(column)
            if factor:
                for key, value in pivot.items():
                    vector[key] = vector.get(key, Fraction(0)) - factor * value
                    if vector[key] == 0:
                        del vector[key]
        return vector

    for row in rows:
        reduced = reduce(row)
        if reduced:
            column = min(reduced)
            scale = reduced[column]
            pivot = {k: v / scale for k, v in reduced.items()}
            # Keep earlier pivots reduced against the new one, so `reduce` is one pass.
            for index, (other_column, other) in enumerate(pivots):
                factor = other.get(column)
                if factor:
                    for key, value in pivot.items():
                        other[key] = other.get(key, Fraction(0)) - factor * value
                        if other[key] == 0:
                            del other[key]
                    pivots[index] = (other_column, other)
            pivots.append((column, pivot))
    return not reduce(target)


def attacker_knowledge(hierarchy: Hierarchy, heads: dict[str, int]):
    """Each cell as its set of units, and the sums the attacker knows."""
    members: dict[str, set[str]] = {key: set() for key in hierarchy.cells}
    for unit_id in heads:
        for cell in hierarchy.cells_of(unit_id):
            members[cell].add(unit_id)
    known = [members[key] for key, cell in hierarchy.cells.items() if not cell.suppressed]
    for key, cell in hierarchy.cells.items():
        finer = {
            unit_id
            for unit_id in members[key]
            if any(hierarchy.cells[c].rank > cell.rank for c in hierarchy.cells_of(unit_id))
        }
        if finer:  # a cell divided into finer ones: the rest of it is known
            known.append(members[key] - finer)
    return members, known


def recovered_cells(hierarchy: Hierarchy, heads: dict[str, int]) -> list[str]:
    members, known = attacker_knowledge(hierarchy, heads)
    rows = [{u: Fraction(1) for u in group} for group in known if group]
    return [
        key
        for key, cell in hierarchy.cells.items()
        if cell.suppressed
        and members[key]
        and in_span(rows, {u: Fraction(1) for u in members[key]})
    ]


@st.composite
def forces(draw):
    """A force's unit tree (levels sometimes skipped, sometimes out of order) and each unit's
    own head count, small numbers so that suppression is common."""
    size = draw(st.integers(min_value=1, max_value=14))
    units = [UnitNode("F", None, "force", "Force")]
    for index in range(size):
        parent = draw(st.sampled_from(units[: index + 1])).unit_id
        level = draw(
            st.sampled_from(["team", "team", "team", "department", "department", "area", "command"])
        )
        units.append(UnitNode(f"U{index}", parent, level, f"Unit {index}"))
    heads = {u.unit_id: draw(st.integers(min_value=0, max_value=12)) for u in units}
    return units, heads


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forces())
def test_no_suppressed_cell_can_be_recovered_from_the_totals(force):
    units, heads = force
    hierarchy = build(units, heads)
    assert recovered_cells(hierarchy, heads) == []


@settings(max_examples=200, deadline=None)
@given(forces())
def test_every_cell_of_fewer_than_five_people_is_suppressed(force):
    units, heads = force
    hierarchy = build(units, heads)
    for cell in hierarchy.cells.values():
        if cell.people < THRESHOLD:
            assert cell.suppressed and cell.reason == "primary"
        elif cell.suppressed:
            assert cell.reason == "secondary"


def tree(*rows: tuple[str, str | None, str]) -> list[UnitNode]:
    return [UnitNode(u, p, level, u) for u, p, level in rows]


FORCE_UNITS = tree(
    ("F", None, "force"),
    ("A1", "F", "area"),
    ("A2", "F", "area"),
    ("D1", "A1", "department"),
    ("D2", "A1", "department"),
    ("D3", "A2", "department"),
    ("T1", "D1", "team"),
    ("T2", "D1", "team"),
    ("T3", "D1", "team"),
    ("T4", "D2", "team"),
    ("T5", "D3", "team"),
    ("T6", "D3", "team"),
)


def test_one_small_team_takes_its_smallest_sibling_with_it():
    heads = {"T1": 3, "T2": 9, "T3": 12, "T4": 20, "T5": 30, "T6": 25}
    hierarchy = build(FORCE_UNITS, heads)
    suppressed = {k: c.reason for k, c in hierarchy.cells.items() if c.suppressed}
    assert suppressed == {"T1": "primary", "T2": "secondary"}
    assert recovered_cells(hierarchy, heads) == []


def test_subtracting_published_siblings_from_the_parent_gives_nothing():
    """The attack the issue names, done by hand: parent minus the published children."""
    heads = {"T1": 3, "T2": 9, "T3": 12, "T4": 20, "T5": 2, "T6": 25}
    hierarchy = build(FORCE_UNITS, heads)
    children = hierarchy.children()
    for parent, below in children.items():
        total = hierarchy.cells[parent]
        if total.suppressed:
            continue
        hidden = [c for c in below if hierarchy.cells[c].suppressed]
        assert len(hidden) != 1, f"{hidden[0]} = {parent} minus its published children"


def test_a_department_hidden_as_a_complement_hides_one_of_its_teams_too():
    """D2 alone among departments would be A1 minus D1; hiding D1 as well is not enough
    while D1's teams are all published (D1 is their sum), so a team of D1 goes too."""
    heads = {"T1": 6, "T2": 9, "T3": 12, "T4": 3, "T5": 30, "T6": 25}
    hierarchy = build(FORCE_UNITS, heads)
    suppressed = {k for k, c in hierarchy.cells.items() if c.suppressed}
    assert {"T4", "D2"} <= suppressed  # primary: 3 people each
    assert recovered_cells(hierarchy, heads) == []
    assert len(suppressed & {"D1", "D3"}) >= 1


def test_a_whole_small_force_hides_its_total_rather_than_its_only_team():
    hierarchy = build(tree(("F", None, "force"), ("T1", "F", "team")), {"T1": 3})
    assert hierarchy.cells["T1"].suppressed and hierarchy.cells[FORCE].suppressed


def test_a_unit_below_a_finer_one_is_reported_and_not_shown():
    units = tree(("F", None, "force"), ("T1", "F", "team"), ("D1", "T1", "department"))
    hierarchy = Hierarchy.build(units)
    assert "D1" not in hierarchy.cells
    assert hierarchy.problems == [
        "unit D1 (department) is below T1 (team): not shown as a department"
    ]
    assert RANK["team"] > RANK["department"]
