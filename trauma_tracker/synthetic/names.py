"""Invented names for invented people (a few with accents, as real HR systems hold)."""

from __future__ import annotations

import random
import unicodedata


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Aaliyah Adam Aisha Alex Alice Amara Amelia Amir Andrew Anna Ava Ben Bethan Callum Charlie "
    "Chloe Chris Connor Daniel David Dylan Eleanor Elif Ellie Emily Emma Ethan Faisal Finn "
    "Freya Gareth George Grace Hannah Harriet Harry Helen Imogen Isaac Isla Jack Jade James "
    "Jamie Jasmine Jessica Joanna John Jordan Joseph Josh Julia Kai Karen Kate Kieran Laura "
    "Leah Liam Lily Louise Lucy Luke Mark Martha Matthew Megan Mia Michael Mohammed Molly "
    "Naomi Nathan Niamh Nicola Noah Oliver Olivia Oscar Owen Paul Priya Rachel Rebecca Rhys "
    "Rosie Ruby Ryan Sam Sarah Scott Sian Sophie Stephen Tom Toby Victoria Will Yusuf Zara "
    "Zoë Siân Łukasz Renée Chloé José"
)
LAST_NAMES = _words(
    "Ahmed Allen Anderson Bailey Baker Barnes Bell Bennett Brooks Brown Butler Campbell Carter "
    "Chapman Clark Clarke Collins Cook Cooper Cox Davies Davis Edwards Ellis Evans Fisher "
    "Foster Fox Gray Green Griffiths Hall Harris Harrison Hill Holmes Hughes Hunt Hussain "
    "Jackson James Jenkins Johnson Jones Kaur Kelly Khan King Knight Lee Lewis Lloyd Marshall "
    "Martin Mason Matthews Mills Mitchell Moore Morgan Morris Murphy Murray Owen Palmer Parker "
    "Patel Pearce Phillips Powell Price Reynolds Richards Richardson Roberts Robinson Rogers "
    "Russell Scott Shaw Simpson Singh Smith Stevens Taylor Thomas Thompson Turner Walker Ward "
    "Watson Webb White Wilkinson Williams Wilson Wood Wright Young O'Brien Nowak Kowalski"
)
EMAIL_DOMAIN = "synthetic-constabulary.police.example"


def person_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def email_for(first: str, last: str, number: int) -> str:
    """An address unique by staff number, folded to ASCII as mail systems do."""
    local = f"{first}.{last}.{number}".lower().replace("'", "").replace("ł", "l")
    local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    return f"{local}@{EMAIL_DOMAIN}"
