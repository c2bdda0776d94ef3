"""Disclosure control for aggregates by area, department and team.

Cells. Every unit of a shown level (area, department, team) is a cell: the people whose unit
today is it or below it, down to the next unit of the same level. The force total is a cell
too. Each cell's parent is its nearest ancestor of a coarser shown level (or the force), so a
cell's count is the sum of its child cells' counts plus the people in it who are in no finer
cell (people attached directly to a department, say).

Primary suppression: a cell of fewer than `THRESHOLD` people.

Secondary suppression. Whoever reads the tables may add and subtract any published figures,
at every level at once (the team table, the department table, the area table and the force
total), and we assume they also know how many people sit directly in each unit outside any
finer cell: the worst case. A suppressed cell can then be recovered exactly when it is a
*bridge* of this graph: one vertex per cell that has child cells, one more vertex G, and one
edge per suppressed cell, joining its parent's vertex to its own (or to G for a cell with no
child cells; the force total joins G to the force's vertex). Each vertex stands for the
equation "a cell's figure = its children's + a known remainder", and each suppressed figure
appears in at most two such equations, so the published figures fix a suppressed one exactly
when no cycle passes through its edge. Secondary suppression adds cells, smallest first and
siblings before others, until no suppressed cell is a bridge. The suppression is worked out
for all levels together, so no table can be played against another.

Every figure shown for a unit (people, exposures, points, alerts, each month's rates) adds up
over the same cells, so suppressing a whole row protects them all. Tests recover cells by
linear algebra over the people themselves, independently of this graph
(tests/oversight/test_disclosure.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

THRESHOLD = 5
SHOWN_LEVELS = ("area", "department", "team")  # coarse to fine
RANK = {"force": 0, "command": 1, "area": 2, "department": 3, "team": 4}
FORCE = "\0force"  # the force total's key (no unit id holds a NUL)
G = "\0ground"


@dataclass(frozen=True)
class UnitNode:
    unit_id: str
    parent_id: str | None
    level: str
    name: str


@dataclass
class Cell:
    unit_id: str  # FORCE for the force total
    level: str
    name: str
    parent: str | None = None  # the parent cell's unit id (FORCE at the top); None for FORCE
    people: int = 0
    suppressed: bool = False
    reason: str | None = None  # primary | secondary

    @property
    def rank(self) -> int:
        return RANK.get(self.level, 0)


@dataclass
class Hierarchy:
    """The units as cells: which cell each person's unit falls in, at each shown level."""

    units: dict[str, UnitNode]
    cells: dict[str, Cell] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _reps: dict[tuple[str, str], str | None] = field(default_factory=dict)

    @classmethod
    def build(cls, units: Iterable[UnitNode], force_name: str = "Whole force") -> Hierarchy:
        hierarchy = cls({u.unit_id: u for u in units})
        hierarchy.cells[FORCE] = Cell(FORCE, "force", force_name)
        for unit in sorted(hierarchy.units.values(), key=lambda u: u.unit_id):
            if unit.level not in SHOWN_LEVELS:
                continue
            ancestors = hierarchy._ancestors(unit.unit_id)
            rank = RANK[unit.level]
            finer = [a for a in ancestors if RANK.get(hierarchy.units[a].level, 0) > rank]
            if finer:
                # A department under a team (say) can't nest; its people count in the cells
                # above it, and the units feed needs correcting.
                hierarchy.problems.append(
                    f"unit {unit.unit_id} ({unit.level}) is below {finer[0]} "
                    f"({hierarchy.units[finer[0]].level}): not shown as a {unit.level}"
                )
                continue
            hierarchy.cells[unit.unit_id] = Cell(unit.unit_id, unit.level, unit.name)
        for cell in hierarchy.cells.values():
            if cell.unit_id != FORCE:
                cell.parent = hierarchy._cell_parent(cell)
        return hierarchy

    def _ancestors(self, unit_id: str) -> list[str]:
        """Strict ancestors, nearest first; a loop in parent_id stops the walk (reported)."""
        seen = {unit_id}
        found = []
        parent = self.units[unit_id].parent_id
        while parent and parent in self.units:
            if parent in seen:
                problem = f"unit {unit_id}: its parents loop back through {parent}"
                if problem not in self.problems:
                    self.problems.append(problem)
                break
            seen.add(parent)
            found.append(parent)
            parent = self.units[parent].parent_id
        return found

    def _cell_parent(self, cell: Cell) -> str:
        for ancestor in self._ancestors(cell.unit_id):
            found = self.cells.get(ancestor)
            if found is not None and found.rank < cell.rank:
                return ancestor
        return FORCE

    def cell_of(self, unit_id: str | None, level: str) -> str | None:
        """The cell of `level` a person whose unit is `unit_id` counts in, if any: the unit
        itself or its nearest ancestor of that level."""
        if unit_id is None or unit_id not in self.units:
            return None
        key = (unit_id, level)
        if key not in self._reps:
            found = None
            for candidate in (unit_id, *self._ancestors(unit_id)):
                cell = self.cells.get(candidate)
                if cell is not None and cell.level == level:
                    found = candidate
                    break
            self._reps[key] = found
        return self._reps[key]

    def cells_of(self, unit_id: str | None) -> list[str]:
        """Every cell a person whose unit is `unit_id` counts in, the force total included."""
        found = [FORCE]
        for level in SHOWN_LEVELS:
            cell = self.cell_of(unit_id, level)
            if cell is not None:
                found.append(cell)
        return found

    def children(self) -> dict[str, list[str]]:
        below: dict[str, list[str]] = {}
        for cell in self.cells.values():
            if cell.parent is not None:
                below.setdefault(cell.parent, []).append(cell.unit_id)
        return below


# --- suppression -----------------------------------------------------------------------------


class _Components:
    """Union-find over the graph's vertices."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, vertex: str) -> str:
        self.parent.setdefault(vertex, vertex)
        while self.parent[vertex] != vertex:
            self.parent[vertex] = self.parent[self.parent[vertex]]
            vertex = self.parent[vertex]
        return vertex

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _endpoints(cell: Cell, internal: set[str]) -> tuple[str, str]:
    own = cell.unit_id if cell.unit_id in internal else G
    if cell.unit_id == FORCE:
        return G, own
    return (cell.parent if cell.parent in internal else G), own


def _components_without(edges: Mapping[str, tuple[str, str]], left_out: str) -> _Components:
    components = _Components()
    for key, (a, b) in edges.items():
        if key != left_out:
            components.join(a, b)
    return components


def recoverable(cells: Mapping[str, Cell], children: Mapping[str, list[str]]) -> list[str]:
    """The suppressed cells that the published figures give away (bridges), in the order
    they are fixed: finest level first, then smallest."""
    internal = {key for key, below in children.items() if below}
    graph = _Graph(cells, internal)
    found = []
    for key, (a, b) in graph.every.items():
        if a == b:
            continue  # a loop: on a cycle of its own
        components = _components_without(graph.partners(key), key)
        if components.find(a) != components.find(b):
            found.append(key)
    return sorted(found, key=lambda k: (-cells[k].rank, cells[k].people, k))


class _Graph:
    """The suppressed cells' edges, and which of them can keep a given cell hidden.

    A unit with nobody in it today is suppressed too (0 < 5), but anyone may know it is empty
    (disbanded, not yet staffed), and then its figures are all 0: it keeps nobody else hidden,
    and a small unit beside it needs a partner with people in it. Only where no such partner
    could ever be found (hiding every published cell would not do) do empty units count, as
    before: the figures then follow from what the worst case assumes known anyway.
    """

    def __init__(self, cells: Mapping[str, Cell], internal: set[str]) -> None:
        self.cells = cells
        self.every = {k: _endpoints(c, internal) for k, c in cells.items() if c.suppressed}
        self.peopled = {k: e for k, e in self.every.items() if cells[k].people > 0}
        self.published = {k: _endpoints(c, internal) for k, c in cells.items() if not c.suppressed}

    def partners(self, key: str) -> dict[str, tuple[str, str]]:
        if self.cells[key].people == 0:
            return self.every
        a, b = self.every[key]
        components = _components_without(self.peopled, key)
        if components.find(a) == components.find(b):
            return self.peopled  # hidden without counting on an empty unit
        components = _components_without(self.peopled | self.published, key)
        return self.peopled if components.find(a) == components.find(b) else self.every


def suppress(hierarchy: Hierarchy, threshold: int = THRESHOLD) -> None:
    """Mark every cell suppressed or not (primary, then secondary); see the module docstring.

    People counts must be filled in first.
    """
    cells = hierarchy.cells
    children = hierarchy.children()
    internal = {key for key, below in children.items() if below}
    for cell in cells.values():
        cell.suppressed = cell.people < threshold
        cell.reason = "primary" if cell.suppressed else None
    while True:
        exposed = recoverable(cells, children)
        if not exposed:
            return
        complement = _complement(cells, internal, exposed[0])
        complement.suppressed, complement.reason = True, "secondary"


def _complement(cells: Mapping[str, Cell], internal: set[str], bridge: str) -> Cell:
    """The published cell to suppress next so that `bridge` stops being one: one whose edge
    joins the two sides `bridge` separates, else one touching its own side, so that a later
    round can close the cycle; siblings and smaller cells first, the force total last."""
    edges = _Graph(cells, internal).partners(bridge)
    components = _components_without(edges, bridge)
    a, b = edges[bridge]
    side_a, side_b = components.find(a), components.find(b)
    target = cells[bridge]

    def order(cell: Cell) -> tuple:
        if cell.parent == target.parent:
            relation = 0  # a sibling
        elif cell.parent == target.unit_id:
            relation = 1  # a child
        elif cell.unit_id == target.parent:
            relation = 2
        else:
            relation = 3
        return (cell.unit_id == FORCE, relation, cell.people, cell.unit_id)

    published = sorted((c for c in cells.values() if not c.suppressed), key=order)
    if not published:
        raise AssertionError("a bridge with every cell suppressed: the graph is wrong")
    for cell in published:
        p, q = (components.find(v) for v in _endpoints(cell, internal))
        if {p, q} == {side_a, side_b}:
            return cell
    # The side away from G first: the cycle has to be closed through the tree there.
    ground = components.find(G)
    for side in sorted((side_a, side_b), key=lambda s: s == ground):
        for cell in published:
            if side in {components.find(v) for v in _endpoints(cell, internal)}:
                return cell
    return published[0]
