"""Every rate the synthetic force is drawn from, each with where it comes from.

Avon and Somerset (A&S) is the anchor. Event rates are per officer per year and multiply by
the generated force's officer headcount, so a force ten times larger (the Met) gets ten
times the events. Published figures are named as such; a figure with no public source says
plainly that it is an assumption, chosen to look like a real force's data.
"""

from __future__ import annotations

from typing import NamedTuple

# ---------------------------------------------------------------------------------------------
# Scale anchors

# A&S police officers, full-time equivalent, March 2025 (Home Office, Police workforce,
# England and Wales). The denominator of every per-officer rate below.
AS_OFFICERS = 3_300
# A&S command-and-control incident logs a year (force figure, ~190,000).
AS_INCIDENTS_PER_YEAR = 190_000
# A&S police recorded crime a year (ONS police recorded crime by force area, ~130,000).
AS_CRIMES_PER_YEAR = 130_000
# People killed on A&S roads in 2025 (force figure).
AS_ROAD_DEATHS_PER_YEAR = 44
# Deaths per fatal collision: DfT reported road casualties (STATS19) has ~1,600 deaths in
# ~1,500 fatal collisions a year in Great Britain.
DEATHS_PER_FATAL_COLLISION = 1.07

# People living in the A&S force area (ONS mid-year population estimates, mid-2023: ~1.8
# million). Figures published per head of population are scaled by this.
AS_POPULATION = 1_800_000

INCIDENTS_PER_OFFICER_YEAR = AS_INCIDENTS_PER_YEAR / AS_OFFICERS
CRIMES_PER_OFFICER_YEAR = AS_CRIMES_PER_YEAR / AS_OFFICERS

# National anchors for the rare events that drive the top tiers of the criteria.
# Police officers in England and Wales (Home Office, Police workforce, March 2024: ~147,000
# full-time equivalent): national counts of police events are shared out per officer.
EW_OFFICERS = 147_000
# People living in England (ONS mid-year population estimates, mid-2023: ~57.7 million):
# national counts of events in the population are shared out per head.
ENGLAND_POPULATION = 57_700_000
# Police firearms operations a year in England and Wales (Home Office, Police use of firearms
# statistics, England and Wales, year ending March 2024: ~18,400; 18,000-19,000 in each of
# the years before). An operation is an authorised deployment of armed officers: most end
# with no shot fired.
EW_FIREARMS_OPERATIONS_PER_YEAR = 18_400
# Incidents in which police discharged a firearm (same source and year: about 10-15 a year).
EW_FIREARMS_DISCHARGES_PER_YEAR = 12
# Child deaths a year in England, all causes, ages 0-17 (National Child Mortality Database,
# child death review data release, year ending March 2024: ~3,200; 3,000-3,300 a year since
# 2019). Most are expected deaths of babies and children in hospital.
ENGLAND_CHILD_DEATHS_PER_YEAR = 3_200
# Share of child deaths the police attend (assumption: about a third of child deaths are
# unexpected (NCMD reports unexpected deaths as the minority), and police attend every
# unexpected child death under the joint agency response).
CHILD_DEATHS_ATTENDED_SHARE = 0.33

AS_FIREARMS_OPERATIONS_PER_YEAR = EW_FIREARMS_OPERATIONS_PER_YEAR * AS_OFFICERS / EW_OFFICERS
AS_CHILD_DEATHS_ATTENDED_PER_YEAR = (
    ENGLAND_CHILD_DEATHS_PER_YEAR * AS_POPULATION / ENGLAND_POPULATION * CHILD_DEATHS_ATTENDED_SHARE
)
# Chance an armed operation ends in a police discharge (the two national figures above).
DISCHARGE_PER_FIREARMS_OPERATION = EW_FIREARMS_DISCHARGES_PER_YEAR / EW_FIREARMS_OPERATIONS_PER_YEAR

# ---------------------------------------------------------------------------------------------
# Workforce

# Headcount shares by staff type. A&S: ~3,300 officers, ~2,500 police staff and a few hundred
# PCSOs and special constables (Home Office, Police workforce, March 2025); the shares below
# are those totals rounded, so that people=5,800 is an A&S-sized force.
SHARE_PCSO = 0.045
SHARE_SPECIAL = 0.03
# Front-line member shares of headcount by department, shaped so that officers come to ~52%
# and police staff to ~40% of headcount once sergeants and managers are added (assumption:
# forces do not publish a department breakdown in this form). Corporate staff take the rest.
SHARE_RESPONSE_PC = 0.16
SHARE_NEIGHBOURHOOD_PC = 0.075
SHARE_CID_DC = 0.085
SHARE_CID_STAFF_INVESTIGATOR = 0.035
SHARE_MAJOR_CRIME_DC = 0.02
SHARE_CPOA_DC = 0.035
SHARE_CPOA_STAFF = 0.01
SHARE_ROADS_PC = 0.025
SHARE_FIREARMS_PC = 0.03
SHARE_DETENTION_OFFICER = 0.03
SHARE_CALL_HANDLER = 0.055
SHARE_DISPATCHER = 0.03
# Team sizes including the sergeant or team leader (assumption, typical of shift teams).
TEAM_SIZE = 10
# Teams per inspector (assumption: an inspector leads a shift of about four teams).
TEAMS_PER_INSPECTOR = 4
# Areas (basic command units) by headcount: A&S has a handful of local policing areas.
AREA_THRESHOLDS = ((100, 1), (250, 2), (2_000, 3), (4_500, 4))  # (below headcount, areas)
MAX_AREAS = 5

# Leaving rates a year. Officers: the Home Office's Police workforce statistics put the
# officer leaving rate at about 6-7% a year (2023-24). Staff, PCSOs and specials: assumptions
# (PCSO and special constable turnover is known to be higher than officers').
LEAVING_RATE = {"officer": 0.065, "staff": 0.10, "pcso": 0.12, "special": 0.18}
# Moves between teams of the same rank and role a year, per person (assumption). A sergeant's
# move changes the supervisor of everyone in both teams.
TRANSFER_RATE = 0.08

# ---------------------------------------------------------------------------------------------
# Command and control

# Demand by hour of day (relative; assumption shaped like published force demand profiles:
# low before dawn, rising through the day, peaking in the early evening).
HOURLY_DEMAND = (
    3.0, 2.5, 2.0, 1.6, 1.4, 1.4, 1.8, 2.6, 3.4, 3.8, 4.0, 4.2,
    4.4, 4.5, 4.7, 5.0, 5.3, 5.4, 5.4, 5.2, 5.0, 4.6, 4.0, 3.5,
)  # fmt: skip
# Demand by weekday, Monday first (assumption: busier Friday and Saturday).
WEEKDAY_DEMAND = (0.96, 0.95, 0.96, 0.98, 1.07, 1.1, 0.98)

# Share of incident logs whose log was opened from a call (999/101) and so has a call handler
# (assumption: the rest are officer-generated, online or transferred in).
CALL_HANDLED_SHARE = 0.75


class IncidentType(NamedTuple):
    share: float  # of incident logs
    grades: tuple[float, float, float, float]  # Immediate, Priority, Scheduled, Resolution
    on_scene_minutes: int  # median time an officer spends on it
    crime: float  # chance the incident is recorded as a crime
    opened_as: tuple[tuple[str, float], ...] = ()  # a different opening code, and its chance
    officers: int = 0  # at least this many officers when attended (0: by grade)
    supervisor: float = 0.0  # chance a sergeant attends
    lead: str = "response"  # the pool attending first
    lead_share: float = 0.0  # chance the lead pool is used rather than response


# The closing-code mix (assumption: shaped like published force demand breakdowns, where
# welfare, domestic, anti-social behaviour and administrative logs dominate). Fixed anchors:
# RTC_FATAL comes from A&S's 44 road deaths (below); SUICIDE from the ONS suicide rate of
# ~11 per 100,000 a year applied to A&S's ~1.8 million people (~190 a year, ~0.1% of logs);
# SUDDEN_DEATH from coroners' referrals (~40% of deaths, ONS/MoJ coroner statistics), of which
# police attend about a third (assumption) in a population with ~17,000 deaths a year.
# Homicides: ~590 a year in England and Wales (ONS, Homicide in England and Wales, year ending
# March 2024: 570; ~600 a year before), ~1 per 100,000 people, ~17 a year for A&S; each is
# recorded as a crime from a sudden death log.
EW_POPULATION = 60_900_000  # ONS mid-year population estimates, mid-2023
EW_HOMICIDES_PER_YEAR = 590
AS_HOMICIDES_PER_YEAR = EW_HOMICIDES_PER_YEAR * AS_POPULATION / EW_POPULATION
RTC_FATAL_SHARE = AS_ROAD_DEATHS_PER_YEAR / DEATHS_PER_FATAL_COLLISION / AS_INCIDENTS_PER_YEAR
SUDDEN_DEATH_SHARE = 0.012
SUICIDE_SHARE = 0.001

INCIDENT_TYPES: dict[str, IncidentType] = {
    "SUDDEN_DEATH": IncidentType(
        SUDDEN_DEATH_SHARE,
        (0.7, 0.3, 0, 0),
        240,
        AS_HOMICIDES_PER_YEAR / (SUDDEN_DEATH_SHARE * AS_INCIDENTS_PER_YEAR),
        (("CONCERN_FOR_WELFARE", 0.4),),
        2,
        0.3,
    ),
    "SUICIDE": IncidentType(
        SUICIDE_SHARE,
        (1, 0, 0, 0),
        300,
        0.0,
        (("CONCERN_FOR_WELFARE", 0.5), ("MENTAL_HEALTH", 0.2)),
        2,
        0.8,
    ),
    "RTC_FATAL": IncidentType(
        RTC_FATAL_SHARE, (1, 0, 0, 0), 360, 0.3, (("RTC_INJURY", 0.6),), 3, 1.0, "roads", 1.0
    ),
    "SERIOUS_ASSAULT": IncidentType(
        0.008, (0.9, 0.1, 0, 0), 240, 1.0, (("ASSAULT", 0.4), ("PUBLIC_ORDER", 0.1)), 3, 0.8
    ),
    "CONCERN_FOR_WELFARE": IncidentType(0.085, (0.35, 0.45, 0.05, 0.15), 90, 0.03),
    "MISSING_PERSON": IncidentType(
        0.035, (0.3, 0.5, 0.1, 0.1), 180, 0.02, (("CONCERN_FOR_WELFARE", 0.2),), 0, 0.15
    ),
    "DOMESTIC": IncidentType(
        0.13,
        (0.35, 0.45, 0.15, 0.05),
        120,
        0.55,
        (("ASSAULT", 0.1), ("PUBLIC_ORDER", 0.1)),
        0,
        0.05,
    ),
    "MENTAL_HEALTH": IncidentType(
        0.03, (0.4, 0.4, 0.05, 0.15), 150, 0.0, (("CONCERN_FOR_WELFARE", 0.3),), 0, 0.1
    ),
    "ASSAULT": IncidentType(0.05, (0.25, 0.45, 0.2, 0.1), 75, 0.9),
    "SEXUAL_OFFENCE": IncidentType(0.008, (0.3, 0.5, 0.15, 0.05), 120, 0.9),
    "PUBLIC_ORDER": IncidentType(0.035, (0.3, 0.4, 0.1, 0.2), 45, 0.6),
    "ASB": IncidentType(0.095, (0.05, 0.3, 0.25, 0.4), 40, 0.1, (), 0, 0, "neighbourhood", 0.5),
    "THEFT": IncidentType(0.06, (0.05, 0.25, 0.3, 0.4), 40, 0.9),
    "SHOPLIFTING": IncidentType(0.025, (0.1, 0.3, 0.2, 0.4), 50, 0.95),
    "BURGLARY": IncidentType(0.025, (0.2, 0.4, 0.35, 0.05), 60, 0.85),
    "VEHICLE_CRIME": IncidentType(0.02, (0.05, 0.15, 0.3, 0.5), 40, 0.9),
    "CRIMINAL_DAMAGE": IncidentType(0.03, (0.05, 0.25, 0.3, 0.4), 40, 0.9),
    "FRAUD": IncidentType(0.015, (0, 0.05, 0.25, 0.7), 45, 0.7),
    "DRUGS": IncidentType(0.012, (0.05, 0.3, 0.2, 0.45), 60, 0.8, (), 0, 0, "neighbourhood", 0.4),
    "RTC_INJURY": IncidentType(
        0.012, (0.8, 0.2, 0, 0), 120, 0.15, (("RTC_DAMAGE", 0.2),), 0, 0, "roads", 0.5
    ),
    "RTC_DAMAGE": IncidentType(0.035, (0.05, 0.2, 0.05, 0.7), 40, 0.0, (), 0, 0, "roads", 0.3),
    "HIGHWAY_OBSTRUCTION": IncidentType(0.027, (0.3, 0.4, 0, 0.3), 30, 0.0, (), 0, 0, "roads", 0.3),
    "SUSPICIOUS": IncidentType(0.06, (0.15, 0.45, 0.1, 0.3), 35, 0.05),
    "ALARM": IncidentType(0.025, (0.1, 0.5, 0, 0.4), 25, 0.0),
    "ABANDONED_CALL": IncidentType(0.03, (0.1, 0.3, 0, 0.6), 20, 0.0),
    "TRANSFERRED": IncidentType(0.025, (0, 0, 0, 1), 0, 0.0),
    "ADMIN": IncidentType(0.06, (0, 0, 0.05, 0.95), 30, 0.0),
    "NO_POLICE_ACTION": IncidentType(0.05 - RTC_FATAL_SHARE, (0, 0, 0, 1), 0, 0.0),
}
assert abs(sum(t.share for t in INCIDENT_TYPES.values()) - 1.0) < 1e-9

# Officers sent by grade when the closing code sets no minimum: (count, weight) (assumption:
# immediate jobs usually double-crewed with back-up, scheduled ones single-crewed).
OFFICERS_BY_GRADE = {
    "I": ((1, 0.05), (2, 0.3), (3, 0.35), (4, 0.2), (5, 0.1)),
    "P": ((1, 0.2), (2, 0.45), (3, 0.35)),
    "S": ((1, 0.8), (2, 0.2)),
}
# Neighbourhood officers take some of the jobs response would otherwise attend: many
# scheduled appointments and a few others in their patch (assumption).
NEIGHBOURHOOD_TAKES_SCHEDULED = 0.3
NEIGHBOURHOOD_TAKES_OTHER = 0.05
# Minutes from log to first arrival, median by grade (assumption; forces' published targets are
# ~15-20 minutes for immediate and ~60 for priority; scheduled jobs are appointments).
ARRIVAL_MINUTES = {"I": 12, "P": 55, "S": 1_500}

# Qualifiers: chance per closing code (assumptions unless a source is named).
# CHILD: ~2/3 of missing person reports are children (NCA UK Missing Persons Unit data
# reports); children are ~4% of road deaths (DfT reported road casualties). On a sudden death
# and a suicide, CHILD comes from the National Child Mortality Database (below).
# FIREARM: an armed operation (see EW_FIREARMS_OPERATIONS_PER_YEAR): ~410 a year for A&S,
# ~0.2% of its logs, shared out over the closing codes by FIREARM_WEIGHT.
# FIREARM_DISCHARGE: police fired a shot in an armed operation (EW_FIREARMS_DISCHARGES_PER_YEAR:
# ~0.3 a year for A&S); drawn only on an incident with FIREARM.
# OFFICER_INJURED: ~41,000 assaults on police constables a year in England and Wales (Home
# Office, assaults on police), ~0.3 per officer, ~900 a year for A&S, ~0.5% of logs.
# OFFICER_SERIOUSLY_INJURED: an officer seriously injured (assumption: no national count of
# serious injuries to officers is published; 1 in 50 of the assaults above).
# OFFICER_THREATENED: an officer shot at, stabbed at, or threatened with a weapon or with
# death at the scene (assumption: no national count is published; 1 in 20 of the assaults
# above, ~45 incidents a year for A&S).
# MASS_CASUALTY: a handful in five years (assumption).
# Children's share of suicides (assumption: ONS suicide registrations have a few percent
# aged under 18) and of road deaths (DfT, above).
CHILD_DEATH_SHARE_OF_SUICIDES = 0.03
CHILD_DEATH_SHARE_OF_ROAD_DEATHS = 0.04
SERIOUSLY_INJURED_SHARE_OF_ASSAULTS = 0.02
THREATENED_SHARE_OF_ASSAULTS = 0.05
# Unexpected child deaths attended as sudden deaths: those not already counted as suicides
# or road deaths.
CHILD_SUDDEN_DEATH = (
    AS_CHILD_DEATHS_ATTENDED_PER_YEAR
    - CHILD_DEATH_SHARE_OF_SUICIDES * SUICIDE_SHARE * AS_INCIDENTS_PER_YEAR
    - CHILD_DEATH_SHARE_OF_ROAD_DEATHS * AS_ROAD_DEATHS_PER_YEAR
) / (SUDDEN_DEATH_SHARE * AS_INCIDENTS_PER_YEAR)
# Where armed operations happen (relative weight per closing code; assumption shaped like the
# Home Office statistics' note that most operations follow reports of a weapon seen or used).
FIREARM_WEIGHT = {
    "SERIOUS_ASSAULT": 10.0,
    "SUSPICIOUS": 4.0,
    "PUBLIC_ORDER": 2.0,
    "MENTAL_HEALTH": 2.0,
    "DOMESTIC": 1.0,
    "ASSAULT": 1.0,
    "CONCERN_FOR_WELFARE": 0.6,
}
_FIREARM_SCALE = (AS_FIREARMS_OPERATIONS_PER_YEAR / AS_INCIDENTS_PER_YEAR) / sum(
    INCIDENT_TYPES[code].share * weight for code, weight in FIREARM_WEIGHT.items()
)
FIREARM = {code: weight * _FIREARM_SCALE for code, weight in FIREARM_WEIGHT.items()}
# Chance of OFFICER_INJURED per closing code (assumption shaped by where assaults on police
# happen: public order, domestics and mental health crises).
OFFICER_INJURED = {
    "SERIOUS_ASSAULT": 0.03,
    "CONCERN_FOR_WELFARE": 0.004,
    "DOMESTIC": 0.008,
    "MENTAL_HEALTH": 0.02,
    "ASSAULT": 0.02,
    "PUBLIC_ORDER": 0.03,
    "DRUGS": 0.01,
    "SUSPICIOUS": 0.003,
    "RTC_INJURY": 0.005,
}


def _officer(code: str) -> tuple[tuple[str, float], ...]:
    """The officer-harm qualifiers of a closing code, in a fixed order."""
    injured = OFFICER_INJURED.get(code, 0.0)
    if not injured:
        return ()
    return (
        ("OFFICER_INJURED", injured),
        ("OFFICER_SERIOUSLY_INJURED", injured * SERIOUSLY_INJURED_SHARE_OF_ASSAULTS),
        ("OFFICER_THREATENED", injured * THREATENED_SHARE_OF_ASSAULTS),
    )


def _armed(code: str) -> tuple[tuple[str, float], ...]:
    return (("FIREARM", FIREARM[code]),) if code in FIREARM else ()


QUALIFIERS: dict[str, tuple[tuple[str, float], ...]] = {
    "SUDDEN_DEATH": (("CHILD", CHILD_SUDDEN_DEATH),),
    "SUICIDE": (("CHILD", CHILD_DEATH_SHARE_OF_SUICIDES),),
    "RTC_FATAL": (("CHILD", CHILD_DEATH_SHARE_OF_ROAD_DEATHS), ("MASS_CASUALTY", 0.01)),
    # A child seriously injured in a serious assault (assumption: 1 in 50).
    "SERIOUS_ASSAULT": (
        ("KNIFE", 0.35),
        ("CHILD", 0.02),
        *_armed("SERIOUS_ASSAULT"),
        *_officer("SERIOUS_ASSAULT"),
        ("MASS_CASUALTY", 0.0002),
    ),
    "CONCERN_FOR_WELFARE": (
        ("CHILD", 0.15),
        *_armed("CONCERN_FOR_WELFARE"),
        *_officer("CONCERN_FOR_WELFARE"),
    ),
    "MISSING_PERSON": (("CHILD", 0.65),),
    "DOMESTIC": (
        ("CHILD", 0.3),
        ("KNIFE", 0.01),
        *_armed("DOMESTIC"),
        *_officer("DOMESTIC"),
    ),
    "MENTAL_HEALTH": (*_armed("MENTAL_HEALTH"), *_officer("MENTAL_HEALTH"), ("KNIFE", 0.02)),
    "ASSAULT": (
        ("CHILD", 0.08),
        ("KNIFE", 0.02),
        *_armed("ASSAULT"),
        *_officer("ASSAULT"),
    ),
    "SEXUAL_OFFENCE": (("CHILD", 0.25),),
    "PUBLIC_ORDER": (("KNIFE", 0.01), *_armed("PUBLIC_ORDER"), *_officer("PUBLIC_ORDER")),
    "DRUGS": (*_officer("DRUGS"), ("KNIFE", 0.01)),
    "SUSPICIOUS": (*_armed("SUSPICIOUS"), ("KNIFE", 0.005), *_officer("SUSPICIOUS")),
    "RTC_INJURY": (("CHILD", 0.08), *_officer("RTC_INJURY")),
}
# Armed officers sent to a FIREARM incident (assumption: an armed response vehicle crew or two).
FIREARMS_OFFICERS = ((2, 0.6), (3, 0.25), (4, 0.15))

# ---------------------------------------------------------------------------------------------
# Crime (RMS)

# Codes shaped like Home Office Counting Rules classifications (meanings approximate). The
# recorded-crime mix follows ONS police recorded crime (England and Wales, year ending March
# 2024): violence against the person ~1/3, theft ~1/4, criminal damage ~7%, public order ~5%,
# sexual offences ~3%, drugs ~3%, homicide ~0.01%.
# Child sexual abuse (17A/19C/22B with a child, 86/2 images) comes to ~2,900 a year for A&S,
# against ~100,000 such offences recorded a year in England and Wales (NPCC Vulnerability
# Knowledge and Practice Programme), ~3,000 for A&S's share of the population.
CRIMES_FROM_INCIDENT: dict[str, tuple[tuple[str, float], ...]] = {
    "SUDDEN_DEATH": (("1/1", 0.8), ("4/1", 0.2)),
    "RTC_FATAL": (("4/4", 0.7), ("4/8", 0.3)),
    "SERIOUS_ASSAULT": (("5/1", 0.5), ("8N", 0.45), ("2", 0.05)),
    "CONCERN_FOR_WELFARE": (("11A", 0.6), ("8L", 0.4)),
    "MISSING_PERSON": (("11A", 0.5), ("22B", 0.5)),
    "DOMESTIC": (("8N", 0.35), ("105A", 0.35), ("8U", 0.15), ("8L", 0.1), ("58A", 0.05)),
    "ASSAULT": (("105A", 0.6), ("8N", 0.4)),
    "SEXUAL_OFFENCE": (("17A", 0.6), ("19C", 0.3), ("22B", 0.1)),
    "PUBLIC_ORDER": (("9/1", 0.7), ("8L", 0.3)),
    "ASB": (("9/1", 0.6), ("58D", 0.4)),
    "THEFT": (("49", 0.6), ("39", 0.25), ("34A", 0.15)),
    "SHOPLIFTING": (("46", 1.0),),
    "BURGLARY": (("28E", 0.7), ("30C", 0.3)),
    "VEHICLE_CRIME": (("45", 0.6), ("48", 0.4)),
    "CRIMINAL_DAMAGE": (("58C", 0.4), ("58A", 0.3), ("58D", 0.3)),
    "FRAUD": (("53C", 1.0),),
    "DRUGS": (("92D", 0.7), ("92A", 0.3)),
    "SUSPICIOUS": (("49", 0.5), ("58D", 0.3), ("10A", 0.2)),
    "RTC_INJURY": (("4/8", 0.1), ("3A", 0.9)),
}
# Crimes reported without a C&C log (online, front desk, third parties, police-generated):
# what remains of the crime rate after linked crimes, with its own mix (assumption shaped by
# the ONS mix above; stalking, harassment and online offences dominate this route).
UNLINKED_CRIMES: tuple[tuple[str, float], ...] = (
    ("8L", 0.16),
    ("8Q", 0.05),
    ("8U", 0.06),
    ("105A", 0.10),
    ("8N", 0.05),
    ("49", 0.16),
    ("45", 0.05),
    ("46", 0.08),
    ("58D", 0.06),
    ("53C", 0.05),
    ("17A", 0.025),
    ("19C", 0.015),
    ("22B", 0.01),
    ("11A", 0.02),
    ("86/2", 0.015),  # indecent images of children, see IIOC_CATEGORIES
    ("92D", 0.04),
    ("10A", 0.01),
    ("9/1", 0.04),
)
# Indecent images of children: category of the most serious image (A most severe). Shaped on
# the Internet Watch Foundation's annual reports (~20% A, ~20% B, ~60% C; approximate).
IIOC_CATEGORIES = (("A", 0.2), ("B", 0.2), ("C", 0.6))
# Crime flags: chance a crime of these codes is flagged (assumption).
HATE_FLAG_SHARE = 0.03


class CrimeClass(NamedTuple):
    days_open: float  # median days an investigation stays open
    oic: tuple[tuple[str, float], ...]  # pools the officer in charge comes from
    investigators: tuple[int, int]  # extra investigators, min and max
    interviewer: float  # chance of an interviewer (a suspect interviewed)
    family_liaison: int = 0
    image_reviewers: int = 0
    attending: float = 0.0  # chance each attending officer of a linked incident is recorded
    first_on_scene_oic: float = 0.0  # chance the first officer on scene becomes the OIC


VOLUME_OIC = (("response", 0.5), ("neighbourhood", 0.3), ("cid_staff", 0.2))
# Investigation shapes by crime class (assumption: forces publish outcome timeliness, not
# this; durations follow the ONS "crime outcomes" pattern of volume crime closed within weeks
# and serious offences open for months).
CRIME_CLASSES: dict[str, CrimeClass] = {
    "homicide": CrimeClass(240, (("major_crime", 1.0),), (4, 8), 0.9, family_liaison=2),
    "fatal_rtc": CrimeClass(300, (("roads", 1.0),), (1, 2), 0.8, family_liaison=2),
    "serious_violence": CrimeClass(60, (("cid", 1.0),), (1, 2), 0.6, attending=0.5),
    "sexual": CrimeClass(150, (("cid", 0.8), ("cpoa", 0.2)), (0, 1), 0.4, attending=0.3),
    "child": CrimeClass(120, (("cpoa", 1.0),), (0, 1), 0.3, attending=0.3),
    "iioc": CrimeClass(240, (("cpoa", 1.0),), (0, 0), 0.5, image_reviewers=2),
    "violence": CrimeClass(
        25,
        (("response", 0.45), ("neighbourhood", 0.15), ("cid", 0.2), ("cid_staff", 0.2)),
        (0, 0),
        0.2,
        attending=0.2,
        first_on_scene_oic=0.5,
    ),
    "burglary": CrimeClass(10, (("cid", 0.3), ("response", 0.4), ("cid_staff", 0.3)), (0, 0), 0.1),
    "drugs": CrimeClass(45, (("neighbourhood", 0.6), ("response", 0.4)), (0, 0), 0.3),
    "volume": CrimeClass(7, VOLUME_OIC, (0, 0), 0.05, first_on_scene_oic=0.5),
}
CRIME_CLASS_OF = {
    "1/1": "homicide",
    "1/2": "homicide",
    "4/1": "homicide",
    "4/4": "fatal_rtc",
    "4/8": "fatal_rtc",
    "2": "serious_violence",
    "5/1": "serious_violence",
    "17A": "sexual",
    "19C": "sexual",
    "22B": "child",
    "11A": "child",
    "86/2": "iioc",
    "8N": "violence",
    "105A": "violence",
    "8L": "violence",
    "8Q": "violence",
    "8U": "violence",
    "34A": "violence",
    "28E": "burglary",
    "30C": "burglary",
    "92A": "drugs",
    "92D": "drugs",
}  # anything else is "volume"
# Chance the officer in charge is replaced during an investigation (assumption: moves,
# workload rebalancing), besides the replacement of one who leaves the force.
OIC_REASSIGNED = 0.08
# Chance a crime has an "other" involvement (analyst, disclosure officer; assumption).
OTHER_INVOLVEMENT = 0.03

# ---------------------------------------------------------------------------------------------
# Rest days and sickness

# Cancelled rest days per officer a year (assumption: no national figure is published; the
# Police Federation's pay and morale surveys report most officers having rest days cancelled).
CANCELLED_REST_DAYS_PER_OFFICER_YEAR = 4.0
# Relative rate by role group (assumption: response, firearms and roads cover events).
CANCELLATION_WEIGHT = {
    "response": 1.3,
    "firearms": 1.6,
    "roads_policing": 1.3,
    "neighbourhood": 1.1,
    "cid": 0.8,
    "child_protection_online_abuse": 0.5,
    "custody": 0.8,
    "control_room": 0.6,
}
# Share given under 15 days' notice (assumption; Police Regulations pay more under 15 days).
SHORT_NOTICE_SHARE = 0.3
# Share later reinstated (assumption).
REINSTATED_SHARE = 0.08
# Share falling on a few planned operation days a year (assumption: festivals, bonfire night,
# New Year's Eve), given with long notice.
PLANNED_OPERATION_SHARE = 0.3

# Sick days: ~9 working days lost per officer a year, ~47% of them for psychological reasons
# (A&S figures in the product brief; Home Office sickness absence data is of a similar size).
SICK_DAYS_PER_PERSON_YEAR = 9.0
PSYCHOLOGICAL_SHARE = 0.47


class SicknessReason(NamedTuple):
    days: float  # share of working days lost
    mean_spell: float  # mean working days lost per spell


# The non-psychological split and spell lengths are assumptions shaped like CIPD/NHS absence
# surveys: musculoskeletal second, short respiratory and stomach spells most frequent.
SICKNESS_REASONS: dict[str, SicknessReason] = {
    "psychological": SicknessReason(PSYCHOLOGICAL_SHARE, 28.0),
    "musculoskeletal": SicknessReason(0.18, 14.0),
    "respiratory": SicknessReason(0.12, 3.5),
    "gastrointestinal": SicknessReason(0.06, 2.0),
    "injury": SicknessReason(0.07, 12.0),
    "other": SicknessReason(0.10, 5.0),
}
assert abs(sum(r.days for r in SICKNESS_REASONS.values()) - 1.0) < 1e-9
# Share of injury spells that were injuries on duty, officers (assumption).
INJURY_ON_DUTY_SHARE = 0.5
# Other leave recorded as absences (special leave, bereavement) per person a year (assumption).
OTHER_ABSENCES_PER_PERSON_YEAR = 0.15
