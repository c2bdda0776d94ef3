"""Ingest, scoring, indicators, rules, decisions, alerts, audit."""
