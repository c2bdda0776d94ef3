"""Trauma Tracker: the composition root (settings, command line, later the scheduler)."""
