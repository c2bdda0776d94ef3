"""Scoring: feed records into exposures (criteria.yaml), and each person's figures."""
