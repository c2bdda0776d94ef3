"""Which person in the people feed a signed-in Entra ID account is.

An account is matched by email address: the token's `email` claim, else its
`preferred_username` (the user principal name, which forces usually make the same as the
mail address), against the people feed's `email` of each person's version in force today,
ignoring case. Earlier versions don't count: an address that has moved to someone else
matches only its current holder. A person who has left (their newest version's leave date
is before today) is not signed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from models import PersonVersion, table_of

people_t = table_of(PersonVersion)


@dataclass(frozen=True)
class Account:
    staff_id: str
    display_name: str


class NoPerson(LookupError):
    """No current people record has the account's address."""


class PersonLeft(LookupError):
    """The matching person's record says they have left the force."""

    def __init__(self, staff_id: str) -> None:
        super().__init__(staff_id)
        self.staff_id = staff_id


class SeveralPeople(LookupError):
    """More than one current people record has the account's address (a feed error)."""

    def __init__(self, staff_ids: list[str]) -> None:
        super().__init__(", ".join(staff_ids))
        self.staff_ids = staff_ids


def person_for_addresses(engine: sa.Engine, addresses: Iterable[str], day: date) -> Account:
    """The one person whose version in force on `day` has one of `addresses` as its email.

    :raise NoPerson: nobody's current record has any of them.
    :raise PersonLeft: the person matched has left by `day`.
    :raise SeveralPeople: the addresses match more than one person.
    """
    wanted = {a.strip().lower() for a in addresses if a and a.strip()}
    if not wanted:
        raise NoPerson()
    with engine.connect() as conn:
        # People with the address on any version, then all their versions: the version in
        # force decides, and the newest says whether they have left.
        candidates = (
            sa.select(people_t.c.staff_id)
            .where(sa.func.lower(people_t.c.email).in_(sorted(wanted)))
            .distinct()
        )
        rows = conn.execute(
            sa.select(
                people_t.c.staff_id,
                people_t.c.valid_from,
                people_t.c.display_name,
                people_t.c.email,
                people_t.c.leave_date,
            )
            .where(people_t.c.staff_id.in_(candidates))
            .order_by(people_t.c.staff_id, people_t.c.valid_from)
        ).all()
    versions: dict[str, list] = {}
    for row in rows:
        versions.setdefault(row.staff_id, []).append(row)
    matched = []
    for history in versions.values():
        in_force = [v for v in history if v.valid_from <= day]
        if in_force and (in_force[-1].email or "").strip().lower() in wanted:
            matched.append((in_force[-1], history[-1]))
    if not matched:
        raise NoPerson()
    if len(matched) > 1:
        raise SeveralPeople(sorted(current.staff_id for current, _ in matched))
    current, newest = matched[0]
    if newest.leave_date is not None and newest.leave_date < day:
        raise PersonLeft(current.staff_id)
    return Account(current.staff_id, current.display_name)
