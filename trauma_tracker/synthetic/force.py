"""The force's shape: units (force, commands, areas, departments, teams) and the posts in them.

A post is a seat in a team with a rank and a role, supervised by another post. People come
and go (see `staffing`); posts stay, which is what keeps supervision consistent: a person's
supervisor is whoever holds their post's supervising post on that day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from trauma_tracker.synthetic import rates

AREAS = (
    ("N", "Northvale"),
    ("S", "Southmoor"),
    ("E", "Eastbury"),
    ("W", "Westhaven"),
    ("C", "Castleford"),
)
# Areas differ in size the way a city area differs from rural ones (assumption).
AREA_WEIGHTS = (1.3, 1.0, 0.9, 0.8, 0.7)
COMMANDS = (
    ("LP", "Local Policing Command"),
    ("INV", "Investigations Command"),
    ("OPS", "Operational Support Command"),
    ("CON", "Contact Management Command"),
    ("CORP", "Corporate Services"),
)
CORPORATE_DEPARTMENTS = (
    ("HR", "People Services"),
    ("FIN", "Finance"),
    ("ICT", "Digital and Technology"),
    ("EST", "Estates and Fleet"),
    ("BSU", "Business Support"),
)
# Rungs of the promotion ladder; a vacancy on rung r is filled from rung r - 1.
OFFICER_RANKS = (
    "Constable",
    "Sergeant",
    "Inspector",
    "Chief Inspector",
    "Superintendent",
    "Chief Superintendent",
    "Assistant Chief Constable",
    "Deputy Chief Constable",
    "Chief Constable",
)
DETECTIVE_RANKS = tuple("Detective " + r for r in OFFICER_RANKS[:4])
STAFF_GRADES = ("Grade C", "Grade E", "Grade G", "Grade I", "Director")


class Seat(NamedTuple):
    staff_type: str
    rank: str
    role_group: str
    pool: str | None = None  # the deployment/investigation pool the holder is drawn from
    weight: float = 1.0  # share of the pool's work (a special constable gives a few hours)


class Member(NamedTuple):
    share: float  # of headcount
    seat: Seat


class Department(NamedTuple):
    command: str
    code: str
    name: str
    per_area: bool
    members: tuple[Member, ...]
    leader: Seat  # leads a team (sergeant, team leader)
    manager: Seat  # leads a few teams (inspector, manager)
    head: Seat  # leads the department when it has several managers


def _officer(role: str, rung: int, pool: str | None = None, detective: bool = False) -> Seat:
    ranks = DETECTIVE_RANKS if detective else OFFICER_RANKS
    return Seat("officer", ranks[rung], role, pool)


def _staff(rung: int, role: str) -> Seat:
    return Seat("staff", STAFF_GRADES[rung], role)


def _officer_department(command, code, name, per_area, members, role, sgt_pool=None, det=False):
    return Department(
        command,
        code,
        name,
        per_area,
        members,
        _officer(role, 1, sgt_pool, det),
        _officer(role, 2, None, det),
        _officer(role, 3, None, det),
    )


R = rates
DEPARTMENTS = (
    _officer_department(
        "LP",
        "RSP",
        "Response",
        True,
        (
            Member(R.SHARE_RESPONSE_PC, _officer("response", 0, "response")),
            Member(
                R.SHARE_SPECIAL * 0.6,
                Seat("special", "Special Constable", "response", "response", 0.12),
            ),
        ),
        "response",
        "response_sgt",
    ),
    _officer_department(
        "LP",
        "NBH",
        "Neighbourhood",
        True,
        (
            Member(R.SHARE_NEIGHBOURHOOD_PC, _officer("neighbourhood", 0, "neighbourhood")),
            Member(R.SHARE_PCSO, Seat("pcso", "PCSO", "neighbourhood", "neighbourhood", 0.5)),
            Member(
                R.SHARE_SPECIAL * 0.4,
                Seat("special", "Special Constable", "neighbourhood", "neighbourhood", 0.12),
            ),
        ),
        "neighbourhood",
        "neighbourhood_sgt",
    ),
    _officer_department(
        "INV",
        "CID",
        "CID",
        True,
        (
            Member(R.SHARE_CID_DC, _officer("cid", 0, "cid", True)),
            Member(
                R.SHARE_CID_STAFF_INVESTIGATOR,
                Seat("staff", "Investigator", "staff_investigation", "cid_staff"),
            ),
        ),
        "cid",
        det=True,
    ),
    _officer_department(
        "INV",
        "MCIT",
        "Major Crime Investigation Team",
        False,
        (Member(R.SHARE_MAJOR_CRIME_DC, _officer("cid", 0, "major_crime", True)),),
        "cid",
        det=True,
    ),
    _officer_department(
        "INV",
        "CPOA",
        "Child Protection and Online Abuse",
        False,
        (
            Member(R.SHARE_CPOA_DC, _officer("child_protection_online_abuse", 0, "cpoa", True)),
            Member(
                R.SHARE_CPOA_STAFF,
                Seat("staff", "Digital Media Investigator", "staff_investigation", "cpoa", 0.8),
            ),
        ),
        "child_protection_online_abuse",
        det=True,
    ),
    _officer_department(
        "OPS",
        "RPU",
        "Roads Policing",
        False,
        (Member(R.SHARE_ROADS_PC, _officer("roads_policing", 0, "roads")),),
        "roads_policing",
        "roads_sgt",
    ),
    _officer_department(
        "OPS",
        "AFO",
        "Armed Response",
        False,
        (Member(R.SHARE_FIREARMS_PC, _officer("firearms", 0, "firearms")),),
        "firearms",
        "firearms_sgt",
    ),
    _officer_department(
        "OPS",
        "CUS",
        "Custody",
        False,
        (Member(R.SHARE_DETENTION_OFFICER, Seat("staff", "Detention Officer", "custody")),),
        "custody",
    ),
    _officer_department(
        "CON",
        "CTL",
        "Control Room",
        False,
        (
            Member(
                R.SHARE_CALL_HANDLER, Seat("staff", "Call Handler", "control_room", "call_handler")
            ),
            Member(R.SHARE_DISPATCHER, Seat("staff", "Dispatcher", "control_room", "dispatcher")),
        ),
        "control_room",
    ),
)


@dataclass(frozen=True)
class Unit:
    unit_id: str
    parent_id: str
    level: str
    name: str


@dataclass(eq=False)
class Post:
    index: int
    unit_id: str
    area: str | None
    seat: Seat
    rung: int
    boss: int | None  # the supervising post
    subordinates: list[int] = field(default_factory=list)

    @property
    def ladder(self) -> tuple[str, str]:
        return (self.seat.staff_type, self.seat.role_group)


@dataclass
class Force:
    units: list[Unit]
    posts: list[Post]
    areas: list[tuple[str, str, float]]  # (code, unit_id, share of local demand)

    def officers(self) -> int:
        return sum(1 for p in self.posts if p.seat.staff_type == "officer")


class _Builder:
    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.posts: list[Post] = []

    def unit(self, unit_id: str, parent: str, level: str, name: str) -> str:
        self.units.append(Unit(unit_id, parent, level, name))
        return unit_id

    def post(self, unit_id, area, seat: Seat, rung: int, boss: int | None) -> int:
        index = len(self.posts)
        self.posts.append(Post(index, unit_id, area, seat, rung, boss))
        if boss is not None:
            self.posts[boss].subordinates.append(index)
        return index

    def department(self, dept, dept_id, parent, area, name, members, boss) -> None:
        """Teams of about TEAM_SIZE under a leader each, managers over a few teams."""
        self.unit(dept_id, parent, "department", name)
        teams = max(1, math.ceil(len(members) / (rates.TEAM_SIZE - 1)))
        managers = math.ceil(teams / rates.TEAMS_PER_INSPECTOR)
        mgt = self.unit(f"{dept_id}-MGT", dept_id, "team", f"{name} Management Team")
        if managers > 1:
            boss = self.post(mgt, area, dept.head, 3, boss)
        manager_posts = [self.post(mgt, area, dept.manager, 2, boss) for _ in range(managers)]
        for t in range(teams):
            team = self.unit(f"{dept_id}-T{t + 1:02d}", dept_id, "team", f"{name} Team {t + 1}")
            leader = self.post(
                team, area, dept.leader, 1, manager_posts[t // rates.TEAMS_PER_INSPECTOR]
            )
            for seat in members[t::teams]:
                self.post(team, area, seat, 0, leader)


def _areas_for(people: int) -> int:
    for below, count in rates.AREA_THRESHOLDS:
        if people < below:
            return count
    return rates.MAX_AREAS


def _members(dept: Department, people: float) -> list[Seat]:
    seats: list[Seat] = []
    for member in dept.members:
        seats.extend([member.seat] * round(member.share * people))
    return seats


def build_force(people: int) -> Force:
    """Units and posts for a force of about `people` headcount (at least a skeleton)."""
    b = _Builder()
    force_id = b.unit("F", "", "force", "Synthetic Constabulary")
    cog = b.unit("F-COG", force_id, "team", "Chief Officer Group")
    chief = b.post(cog, None, Seat("officer", OFFICER_RANKS[8], "chief_officer"), 8, None)
    deputy = chief
    if people >= 300:
        deputy = b.post(cog, None, Seat("officer", OFFICER_RANKS[7], "chief_officer"), 7, chief)
    assistants = [deputy]
    if people >= 1_500:
        seat = Seat("officer", OFFICER_RANKS[6], "chief_officer")
        assistants = [b.post(cog, None, seat, 6, deputy) for _ in range(2)]

    n_areas = _areas_for(people)
    weights = AREA_WEIGHTS[:n_areas]
    area_share = [w / sum(weights) for w in weights]
    areas = [
        (code, f"LP-{code}", share) for (code, _), share in zip(AREAS, area_share, strict=False)
    ]

    heads: dict[str, int] = {}
    for i, (code, name) in enumerate(COMMANDS[:4]):
        cmd = b.unit(code, force_id, "command", name)
        team = b.unit(f"{code}-CMD", cmd, "team", f"{name} Team")
        seat = Seat("officer", OFFICER_RANKS[5], "senior_leadership")
        heads[code] = b.post(team, None, seat, 5, assistants[i % len(assistants)])

    area_heads = {}
    for (code, name), (_, unit_id, _) in zip(AREAS[:n_areas], areas, strict=True):
        b.unit(unit_id, "LP", "area", name)
        team = b.unit(f"{unit_id}-CMD", unit_id, "team", f"{name} Area Command Team")
        seat = Seat("officer", OFFICER_RANKS[4], "senior_leadership")
        area_heads[code] = b.post(team, code, seat, 4, heads["LP"])

    for dept in DEPARTMENTS:
        if dept.per_area:
            for (code, area_name), (_, area_unit, share) in zip(
                AREAS[:n_areas], areas, strict=True
            ):
                members = _members(dept, people * share)
                if not members and dept.code != "RSP":
                    continue
                parent = area_unit if dept.command == "LP" else dept.command
                boss = area_heads[code] if dept.command == "LP" else heads[dept.command]
                dept_id = f"{parent}-{dept.code}" if dept.command == "LP" else f"INV-{code}-CID"
                b.department(dept, dept_id, parent, code, f"{area_name} {dept.name}", members, boss)
        else:
            members = _members(dept, people)
            if members or dept.code == "CTL":
                dept_id = f"{dept.command}-{dept.code}"
                b.department(
                    dept, dept_id, dept.command, None, dept.name, members, heads[dept.command]
                )

    _corporate(b, people, force_id, deputy)
    return Force(b.units, b.posts, areas)


def _corporate(b: _Builder, people: int, force_id: str, deputy: int) -> None:
    """Corporate services take the headcount the operational departments leave."""
    remaining = people - len(b.posts)
    if remaining < 3:
        return
    corp = b.unit("CORP", force_id, "command", "Corporate Services")
    team = b.unit("CORP-CMD", corp, "team", "Corporate Services Team")
    director = b.post(team, None, _staff(4, "staff_admin"), 4, deputy)
    # About one leader or manager per eight staff, so members are ~7/8 of what is left.
    members = max(1, round((remaining - 1) * 7 / 8))
    n_depts = max(1, min(len(CORPORATE_DEPARTMENTS), round(members / 80)))
    role = "staff_admin"
    dept = Department("CORP", "", "", False, (), _staff(1, role), _staff(2, role), _staff(3, role))
    for i, (code, name) in enumerate(CORPORATE_DEPARTMENTS[:n_depts]):
        count = members // n_depts + (1 if i < members % n_depts else 0)
        seats = [_staff(0, role)] * count
        b.department(dept, f"CORP-{code}", corp, None, name, seats, director)
