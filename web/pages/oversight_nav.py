"""The oversight pages' navigation links: each shown only to the roles that may open it."""

from __future__ import annotations

from flask import url_for

from web.auth import User

# (text, endpoint, path prefix, roles that may open it): the same roles as each page's check.
LINKS = (
    ("Wellbeing queue", "queue.work_queue", "/queue", ("wellbeing",)),
    ("Overview", "overview.overview", "/overview", ("leader", "wellbeing")),
    ("Rules", "rules.workbench_page", "/rules", ("steering",)),
    ("Audit", "audit.audit_home", "/audit", ("auditor",)),
    ("Administration", "admin.health", "/admin", ("admin",)),
)


def links(user: User) -> list[tuple[str, str, str]]:
    """(text, href, path prefix) of each oversight page `user` may open."""
    return [
        (text, url_for(endpoint), prefix)
        for text, endpoint, prefix, roles in LINKS
        if any(user.has(role) for role in roles)
    ]
